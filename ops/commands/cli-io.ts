/** Where an operator command writes: its output, its messages, and whether redraws are possible. */
export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** The stream that carries live progress is a terminal: it redraws in place. */
  tty: boolean;
}

/** The process's own stdout and stderr; `progressOn` names the stream whose terminal-ness sets `tty`. */
export function processIo(progressOn: 'stdout' | 'stderr'): CliIo {
  return {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    tty: process[progressOn].isTTY === true,
  };
}
