/**
 * `npm run bench -- <name> [args]`: runs bench/<name>.bench.ts. Each benchmark prints its figures
 * next to the goals and ends with one line of JSON {"bench":"<name>", ...}.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [name, ...rest] = process.argv.slice(2);
const file = name ? fileURLToPath(new URL(`./${name}.bench.ts`, import.meta.url)) : '';
if (!name || !existsSync(file)) {
  console.error(`usage: npm run bench -- <store|wire|broker|xdr|cluster|rebalance|receiver> [options]${name ? ` (no benchmark named "${name}")` : ''}`);
  process.exit(2);
}
const mod = (await import(file)) as { main: (args: string[]) => Promise<void> };
await mod.main(rest);
