/**
 * Logs when a namespace starts and stops refusing writes (disk full, memory budget, ...), with
 * the reason, once per change: the same reason is in `statistics` as stop_writes_reason.
 */
import type { FerryNode } from '../store/index.js';

/** How often the namespaces' stop-writes state is looked at. */
const STOP_WRITES_POLL_MS = 1000;

export interface StopWritesLog {
  warn(msg: string): void;
  info(msg: string): void;
}

/** Starts watching; returns the stop function. */
export function watchStopWrites(node: FerryNode, log: StopWritesLog): () => void {
  const last = new Map<string, string>();
  const check = (): void => {
    for (const name of node.namespaceNames()) {
      const st = node.namespace(name)?.stopWritesState();
      if (!st) continue;
      const was = last.get(name) ?? '';
      if (st.reason === was) continue;
      last.set(name, st.reason);
      if (st.reason !== '') log.warn(`namespace ${name}: writes refused (${st.reason}): ${st.detail}`);
      else log.info(`namespace ${name}: writes accepted again (was ${was})`);
    }
  };
  check();
  const timer = setInterval(check, STOP_WRITES_POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
