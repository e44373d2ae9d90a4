/**
 * Options of a benchmark (`npm run bench -- <name> --flag value ...`), read one way by every
 * bench file: `--name value` pairs and bare `--flag` switches. A value that is given but not a
 * number where one is needed is an error naming the flag, never a silent NaN.
 */

export class BenchArgsError extends Error {
  readonly code = 'BENCH_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'BenchArgsError';
  }
}

export class BenchArgs {
  constructor(private readonly args: readonly string[]) {}

  /** The value after `--name`, or undefined when the flag is absent or has no value. */
  value(name: string): string | undefined {
    const i = this.args.indexOf(`--${name}`);
    const v = i >= 0 ? this.args[i + 1] : undefined;
    return v === undefined || v === '' ? undefined : v;
  }

  str(name: string, dflt: string): string {
    return this.value(name) ?? dflt;
  }

  /** A number option; `min` (inclusive) when the bench needs one, e.g. 1 for counts. */
  num(name: string, dflt: number, min = -Infinity): number {
    const v = this.value(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new BenchArgsError(`--${name} needs a number${min > -Infinity ? ` >= ${min}` : ''}, got "${v}"`);
    return n;
  }

  /** Throws naming the first `--flag` that is not among `known` (benches that refuse typos). */
  onlyKnown(known: readonly string[]): void {
    for (const a of this.args) {
      if (a.startsWith('--') && !known.includes(a.slice(2))) throw new BenchArgsError(`unknown option ${a}`);
    }
  }

  /** True when the bare switch `--name` is given. */
  has(name: string): boolean {
    return this.args.includes(`--${name}`);
  }
}
