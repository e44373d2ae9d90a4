import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

function importsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
}

test('shipper/, receiver/, ops/ and bench/ reach store/ only through store/index.ts', (t) => {
  const deep: string[] = [];
  for (const dir of ['shipper', 'receiver', 'ops', 'bench']) {
    for (const file of sources(join(root, dir))) {
      for (const spec of importsOf(file)) {
        if (!spec.startsWith('.')) continue;
        const target = relative(root, join(file, '..', spec)).replaceAll('\\', '/');
        if (target.startsWith('store/') && target !== 'store/index.js') deep.push(`${relative(root, file)} -> ${target}`);
      }
    }
  }
  t.deepEqual(deep, []);
});

test('store/ imports nothing of shipper/, receiver/, ops/ or broker/ (dependencies point one way)', (t) => {
  const upward: string[] = [];
  for (const file of sources(join(root, 'store'))) {
    for (const spec of importsOf(file)) {
      if (!spec.startsWith('.')) continue;
      const target = relative(root, join(file, '..', spec)).replaceAll('\\', '/');
      if (!target.startsWith('store/')) upward.push(`${relative(root, file)} -> ${target}`);
    }
  }
  t.deepEqual(upward, []);
});
