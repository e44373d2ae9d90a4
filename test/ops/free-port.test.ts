/**
 * Port reservations (ops/free-port.ts): a port another live process reserved is never handed out,
 * a dead process's reservation is taken over, and a process's reservations go when it exits.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { freePort, RESERVATIONS_DIR, reservePort } from '../../ops/free-port.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A port number no test picks (freePort never goes above the ephemeral range start); we only touch its reservation file. */
const probePort = (k: number): number => 19_000 + (process.pid % 500) * 2 + k;

test('a port reserved by a live process is refused; a dead owner is taken over', async (t) => {
  mkdirSync(RESERVATIONS_DIR, { recursive: true });
  const live = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => live.kill('SIGKILL'));
  const held = probePort(0);
  writeFileSync(join(RESERVATIONS_DIR, String(held)), String(live.pid));
  t.false(reservePort(held), 'held by a live process');
  const dead = spawnSync('true').pid!;
  const stale = probePort(1);
  writeFileSync(join(RESERVATIONS_DIR, String(stale)), String(dead));
  t.true(reservePort(stale), 'its owner is gone');
  t.is(readFileSync(join(RESERVATIONS_DIR, String(stale)), 'utf8'), String(process.pid));
  t.false(reservePort(stale), 'never given twice');
});

test('a process reserves the ports it hands out and releases them when it exits', async (t) => {
  const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', "import('./ops/free-port.ts').then(async (m) => { const p = await m.freePort(); console.log(p, require('node:fs').existsSync(require('node:path').join(m.RESERVATIONS_DIR, String(p)))); })"], { cwd: ROOT, encoding: 'utf8' });
  t.is(child.status, 0, child.stderr);
  const [port, reservedWhileAlive] = child.stdout.trim().split(' ');
  t.is(reservedWhileAlive, 'true');
  t.false(existsSync(join(RESERVATIONS_DIR, port!)), 'released at exit');
  const mine = await freePort();
  t.is(readFileSync(join(RESERVATIONS_DIR, String(mine)), 'utf8'), String(process.pid));
});
