/**
 * Shutdown signals for commands. bin/ferry.mjs takes SIGINT/SIGTERM before tsx loads and
 * re-emits them on a bus; outside that entry point (tests importing a command) the process
 * signals are used directly.
 */
import type { EventEmitter } from 'node:events';

export type ShutdownSignal = 'SIGINT' | 'SIGTERM';

export function onShutdownSignal(handler: (signal: ShutdownSignal) => void): () => void {
  const bus = (globalThis as { ferrySignals?: EventEmitter }).ferrySignals;
  const target: Pick<EventEmitter, 'on' | 'off'> = bus ?? process;
  const wrapped = (s: ShutdownSignal) => handler(s);
  const onInt = () => wrapped('SIGINT');
  const onTerm = () => wrapped('SIGTERM');
  target.on('SIGINT', onInt);
  target.on('SIGTERM', onTerm);
  return () => {
    target.off('SIGINT', onInt);
    target.off('SIGTERM', onTerm);
  };
}
