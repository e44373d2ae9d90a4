/** Event counters of one record store, shared by its parts and reported in its statistics. */
export interface StoreCounters {
  checksumErrors: number;
  defragBlocks: number;
  defragRecords: number;
  cacheHits: number;
  cacheMisses: number;
  flushes: number;
  tombstonesReclaimed: number;
}

export function newStoreCounters(): StoreCounters {
  return { checksumErrors: 0, defragBlocks: 0, defragRecords: 0, cacheHits: 0, cacheMisses: 0, flushes: 0, tombstonesReclaimed: 0 };
}
