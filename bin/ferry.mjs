#!/usr/bin/env node
// Entry point of the `ferry` CLI: registers tsx so the TypeScript sources run as they are,
// then hands over to ops/cli.ts.
//
// SIGINT/SIGTERM are taken here, before tsx registers: tsx's own signal relay otherwise ends
// the process before the command's clean shutdown runs. Commands subscribe through
// ops/signals.ts; with no subscriber a signal exits as usual.
import { EventEmitter } from 'node:events';
import { constants } from 'node:os';

const bus = new EventEmitter();
globalThis.ferrySignals = bus;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (bus.listenerCount(signal) === 0) process.exit(128 + constants.signals[signal]);
    bus.emit(signal, signal);
  });
}
// Started with an IPC channel (the demo starts its children so): when the parent goes away, even
// by kill -9, shut down as on SIGTERM instead of living on as an orphan. The channel itself does
// not keep the process alive.
if (process.channel) {
  process.channel.unref();
  process.once('disconnect', () => {
    process.stderr.write('ferry: the parent process is gone; shutting down\n');
    process.emit('SIGTERM', 'SIGTERM');
  });
}
// Imported only now: importing tsx installs its signal relay.
const { register } = await import('tsx/esm/api');
register();
await import('../ops/cli.ts');
