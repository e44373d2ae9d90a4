/**
 * Reading records back: from the write buffer or read cache when the block is in memory, else
 * from the device (one probe read that fits most records, a second read for larger ones). Every
 * record read is checked (checksum, length) before it is returned: a failure is a CHECKSUM
 * error, counted, never data.
 */
import type { BlockDevice } from './devices.js';
import { StorageError } from './errors.js';
import type { BlockTable } from './block-table.js';
import { RECORD_HEADER_BYTES, RECORD_MAGIC, alignUp, checkRecord } from './record-format.js';
import type { StoreCounters } from './store-counters.js';
import type { WriteBuffer } from './write-buffer.js';

/** First read of a record on a device: most records fit; larger ones take a second read. */
const READ_PROBE_BYTES = 4096;

export class RecordReader {
  constructor(
    private readonly name: string,
    private readonly device: BlockDevice,
    private readonly table: BlockTable,
    private readonly buffer: WriteBuffer,
    private readonly counters: StoreCounters,
  ) {}

  /** The buffer holding the record at `address` and its offset, checksum verified. */
  bytes(address: number): { buf: Buffer; off: number } {
    const { block, off } = this.table.blockOf(address);
    let buf = this.buffer.memoryBlock(block);
    let at = off;
    if (buf && block !== this.buffer.openBlock) this.counters.cacheHits++;
    if (!buf) {
      this.counters.cacheMisses++;
      const blockBytes = this.table.blockBytes;
      const probe = Math.min(READ_PROBE_BYTES, blockBytes - off);
      buf = this.device.read(block, off, probe);
      at = 0;
      const length = buf.readUInt32LE(4);
      if (length > probe && off + length <= blockBytes) buf = this.device.read(block, off, alignUp(length));
    }
    const check = checkRecord(buf, at);
    if (check !== 'ok') {
      this.counters.checksumErrors++;
      throw new StorageError('CHECKSUM', `namespace ${this.name}: record at block ${block} offset ${off} failed its check (${check})`);
    }
    return { buf, off: at };
  }

  /**
   * The padded length of the record at `address`, from its header alone (no checksum pass: the
   * caller is un-counting a superseded copy, dead either way). A header that does not parse
   * counts as RECORD_HEADER_BYTES.
   */
  length(address: number): number {
    const { block, off } = this.table.blockOf(address);
    const mem = this.buffer.memoryBlock(block);
    const head = mem ? mem.subarray(off, off + 8) : this.device.read(block, off, 8);
    if (head.length === 8 && head.readUInt32LE(0) === RECORD_MAGIC) {
      const n = head.readUInt32LE(4);
      if (n >= RECORD_HEADER_BYTES && off + n <= this.table.blockBytes) return alignUp(n);
    }
    return RECORD_HEADER_BYTES;
  }
}
