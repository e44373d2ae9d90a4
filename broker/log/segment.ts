/**
 * One log segment: `<base>.log` holding stored record batches back to back, `<base>.index`
 * (sparse: relative offset int32, position int32) and `<base>.timeindex` (running max timestamp
 * int64, relative offset int32), both written every `indexIntervalBytes` of log. Synchronous
 * file I/O on the event loop: appends and reads are page-cache operations.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { batchCrcValid, iterateBatches, readBatchHeader, type BatchHeader } from '../protocol/recordBatch.js';

export const indexEntryBytes = 8;
export const timeIndexEntryBytes = 12;
/** Chunk size used when scanning a segment during recovery. */
export const recoveryChunkBytes = 8 * 1024 * 1024;

export interface IndexEntry {
  offset: number;
  position: number;
  /** Largest record timestamp in this segment up to and including the batch at `offset`. */
  maxTimestamp: number;
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function segmentFileName(baseOffset: number, ext: string): string {
  return `${String(baseOffset).padStart(20, '0')}${ext}`;
}

export interface ScannedBatch {
  header: BatchHeader;
  position: number;
}

export class Segment {
  readonly entries: IndexEntry[] = [];
  sizeBytes = 0;
  /** Offset after the last stored record (= baseOffset while empty). */
  nextOffset: number;
  maxTimestamp = -1;
  /** Wall clock of the last append or of the file's mtime at open (for time retention). */
  lastModifiedMs: number;
  private bytesSinceIndex = 0;
  private logFd: number;
  private indexFd: number;
  private timeFd: number;
  private closed = false;
  /** An index write failed: the files are empty and stay so until a scan rebuilds them at open. */
  private indexesDropped = false;
  dirty = false;

  private constructor(readonly dir: string, readonly baseOffset: number, private readonly indexIntervalBytes: number) {
    this.nextOffset = baseOffset;
    // A file that cannot be opened (no space or inodes left, too many open files) must not leave
    // the ones opened before it behind.
    const fds: number[] = [];
    try {
      for (const ext of ['.log', '.index', '.timeindex']) fds.push(fs.openSync(this.file(ext), 'a+'));
    } catch (err) {
      for (const fd of fds) fs.closeSync(fd);
      throw err;
    }
    [this.logFd, this.indexFd, this.timeFd] = fds as [number, number, number];
    this.lastModifiedMs = Date.now();
  }

  file(ext: string): string {
    return path.join(this.dir, segmentFileName(this.baseOffset, ext));
  }

  /**
   * A new empty segment; the directory is fsynced so the new files survive a power loss. When
   * that fails (disk full, I/O error) the files it created are removed again and the error is
   * KAFKA_STORAGE_ERROR (retriable: the caller keeps its current segment).
   */
  static create(dir: string, baseOffset: number, indexIntervalBytes: number): Segment {
    let seg: Segment | undefined;
    try {
      seg = new Segment(dir, baseOffset, indexIntervalBytes);
      fsyncDir(dir);
      return seg;
    } catch (err) {
      try {
        if (seg) seg.deleteFiles();
        else for (const ext of ['.log', '.index', '.timeindex']) fs.rmSync(path.join(dir, segmentFileName(baseOffset, ext)), { force: true });
      } catch {
        // An empty segment file left behind opens as an empty segment; nothing is lost.
      }
      throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `cannot create segment ${segmentFileName(baseOffset, '.log')} in ${dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Opens an existing segment. `recover` scans the whole log checking every batch's CRC, cuts a
   * torn or corrupt tail and rewrites both indexes; otherwise the indexes are loaded as stored
   * (rebuilt by a scan when they look damaged). `onBatch` sees every batch of a recovery scan.
   */
  static open(dir: string, baseOffset: number, indexIntervalBytes: number, recover: boolean, onBatch?: (b: ScannedBatch) => void): Segment {
    const seg = new Segment(dir, baseOffset, indexIntervalBytes);
    const stat = fs.fstatSync(seg.logFd);
    seg.sizeBytes = stat.size;
    seg.lastModifiedMs = stat.mtimeMs;
    if (recover || !seg.loadIndexes()) seg.recover(onBatch);
    return seg;
  }

  private loadIndexes(): boolean {
    const idx = fs.readFileSync(this.file('.index'));
    const tix = fs.readFileSync(this.file('.timeindex'));
    if (idx.length % indexEntryBytes !== 0 || tix.length % timeIndexEntryBytes !== 0) return false;
    const n = idx.length / indexEntryBytes;
    if (tix.length / timeIndexEntryBytes !== n) return false;
    if (this.sizeBytes > 0 && n === 0) return false;
    for (let i = 0; i < n; i++) {
      const position = idx.readInt32BE(i * indexEntryBytes + 4);
      if (position >= this.sizeBytes) return false;
      this.entries.push({
        offset: this.baseOffset + idx.readInt32BE(i * indexEntryBytes),
        position,
        maxTimestamp: Number(tix.readBigInt64BE(i * timeIndexEntryBytes)),
      });
    }
    // The tail after the last index entry: read its batch headers to learn nextOffset/maxTimestamp.
    const last = this.entries[this.entries.length - 1];
    if (last) this.maxTimestamp = last.maxTimestamp;
    let pos = last ? last.position : 0;
    while (pos < this.sizeBytes) {
      const h = readBatchHeader(this.readAt(pos, 61));
      if (h === null || h.sizeBytes < 61 || pos + h.sizeBytes > this.sizeBytes) return false;
      this.nextOffset = h.baseOffset + h.lastOffsetDelta + 1;
      this.maxTimestamp = Math.max(this.maxTimestamp, h.maxTimestamp);
      pos += h.sizeBytes;
    }
    this.bytesSinceIndex = last ? this.sizeBytes - last.position : this.sizeBytes;
    return true;
  }

  /** Full scan with CRC checks; truncates at the first incomplete or corrupt batch. */
  private recover(onBatch?: (b: ScannedBatch) => void): void {
    this.entries.length = 0;
    this.maxTimestamp = -1;
    this.nextOffset = this.baseOffset;
    this.bytesSinceIndex = 0;
    fs.ftruncateSync(this.indexFd, 0);
    fs.ftruncateSync(this.timeFd, 0);
    this.indexesDropped = false;
    const fileSize = this.sizeBytes;
    /** End of the last verified batch. */
    let pos = 0;
    let expected = this.baseOffset;
    const accept = (h: BatchHeader, batch: Buffer, at: number): boolean => {
      if (h.magic !== 2 || h.baseOffset < expected || !batchCrcValid(batch)) return false;
      this.noteBatch(h, at);
      onBatch?.({ header: h, position: at });
      expected = h.baseOffset + h.lastOffsetDelta + 1;
      pos = at + h.sizeBytes;
      return true;
    };
    scan: while (pos < fileSize) {
      const chunkStart = pos;
      const chunk = this.readAt(chunkStart, Math.min(recoveryChunkBytes, fileSize - chunkStart));
      for (const { at, header } of iterateBatches(chunk)) {
        if (!accept(header, chunk.subarray(at, at + header.sizeBytes), chunkStart + at)) break scan;
      }
      if (pos === chunkStart) {
        // A batch larger than the chunk: read it whole, else it is a torn tail.
        const h = readBatchHeader(chunk);
        if (h === null || h.sizeBytes <= chunk.length || pos + h.sizeBytes > fileSize) break;
        if (!accept(h, this.readAt(pos, h.sizeBytes), pos)) break;
      }
    }
    if (pos < fileSize) {
      fs.ftruncateSync(this.logFd, pos);
      fs.fsyncSync(this.logFd);
    }
    this.sizeBytes = pos;
  }

  /** Updates in-memory state (and index files) for a batch stored at `position`. */
  private noteBatch(h: BatchHeader, position: number): void {
    this.nextOffset = h.baseOffset + h.lastOffsetDelta + 1;
    if (h.maxTimestamp > this.maxTimestamp) this.maxTimestamp = h.maxTimestamp;
    if (this.entries.length === 0 || this.bytesSinceIndex >= this.indexIntervalBytes) {
      const e: IndexEntry = { offset: h.baseOffset, position, maxTimestamp: this.maxTimestamp };
      this.entries.push(e);
      this.writeIndexEntry(e);
      this.bytesSinceIndex = 0;
    }
    this.bytesSinceIndex += h.sizeBytes;
  }

  /**
   * Writes an index entry to both index files. The indexes are derived from the log: when a write
   * fails (disk full) after the batch itself is stored, the batch stays stored and acknowledged,
   * the in-memory index keeps serving reads, and both files are emptied and no longer written,
   * so the next open, finding no index for a non-empty log, rebuilds them by a scan.
   */
  private writeIndexEntry(e: IndexEntry): void {
    if (this.indexesDropped) return;
    const idx = Buffer.allocUnsafe(indexEntryBytes);
    idx.writeInt32BE(e.offset - this.baseOffset, 0);
    idx.writeInt32BE(e.position, 4);
    const tix = Buffer.allocUnsafe(timeIndexEntryBytes);
    tix.writeBigInt64BE(BigInt(e.maxTimestamp), 0);
    tix.writeInt32BE(e.offset - this.baseOffset, 8);
    try {
      if (fs.writeSync(this.indexFd, idx) !== idx.length || fs.writeSync(this.timeFd, tix) !== tix.length) throw new Error('short index write');
    } catch {
      this.indexesDropped = true;
      try {
        fs.ftruncateSync(this.indexFd, 0);
        fs.ftruncateSync(this.timeFd, 0);
      } catch {
        // Still damaged on disk: the size checks at open refuse it and the scan rebuilds it.
      }
    }
  }

  /**
   * Appends one stored batch (its base offset already assigned). A failed write (disk full, I/O
   * error) is cut back off the file so later appends never follow a partial batch.
   */
  append(batch: Buffer, h: BatchHeader): void {
    const position = this.sizeBytes;
    let written = 0;
    try {
      while (written < batch.length) written += fs.writeSync(this.logFd, batch, written, batch.length - written, position + written);
    } catch (err) {
      try {
        fs.ftruncateSync(this.logFd, position);
      } catch {
        // The recovery scan on the next start cuts the partial batch.
      }
      throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `append failed: ${(err as Error).message}`);
    }
    this.sizeBytes += batch.length;
    this.noteBatch(h, position);
    this.lastModifiedMs = Date.now();
    this.dirty = true;
  }

  readAt(position: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = fs.readSync(this.logFd, buf, got, length - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return got === length ? buf : buf.subarray(0, got);
  }

  /** Position of the last index entry at or before `offset` (0 if none). */
  private positionFor(pick: (e: IndexEntry) => boolean): number {
    let lo = 0;
    let hi = this.entries.length - 1;
    let pos = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = this.entries[mid]!;
      if (pick(e)) {
        pos = e.position;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return pos;
  }

  /**
   * Whole batches starting with the one containing `offset` (or the first after it), up to
   * `maxBytes` in total but always at least one batch.
   */
  read(offset: number, maxBytes: number): Buffer[] {
    let pos = this.positionFor((e) => e.offset <= offset);
    // Skip batches that end before `offset`.
    for (;;) {
      if (pos >= this.sizeBytes) return [];
      const h = readBatchHeader(this.readAt(pos, 61));
      if (h === null) return [];
      if (h.baseOffset + h.lastOffsetDelta >= offset) break;
      pos += h.sizeBytes;
    }
    const want = Math.min(Math.max(maxBytes, 61), this.sizeBytes - pos);
    const chunk = this.readAt(pos, want);
    let end = 0;
    for (const { at, header } of iterateBatches(chunk)) end = at + header.sizeBytes;
    if (end > 0) return [chunk.subarray(0, end)];
    const h = readBatchHeader(chunk);
    return h === null ? [] : [this.readAt(pos, h.sizeBytes)];
  }

  /** First batch whose max timestamp is >= ts, with its position; null if none. */
  findBatchByTimestamp(ts: number): { header: BatchHeader; batch: Buffer } | null {
    if (this.maxTimestamp < ts) return null;
    let pos = this.positionFor((e) => e.maxTimestamp < ts);
    while (pos < this.sizeBytes) {
      const h = readBatchHeader(this.readAt(pos, 61));
      if (h === null) return null;
      if (h.maxTimestamp >= ts) return { header: h, batch: this.readAt(pos, h.sizeBytes) };
      pos += h.sizeBytes;
    }
    return null;
  }

  /**
   * fsync of the log file only: the active segment's indexes are rebuilt from the log on start,
   * and a segment's indexes are fsynced with it when it rolls (fsyncSync).
   */
  fsync(): Promise<void> {
    if (this.closed || !this.dirty) return Promise.resolve();
    this.dirty = false;
    return new Promise<void>((res, rej) =>
      fs.fsync(this.logFd, (err) => {
        if (!err) return res();
        // Not on disk: still dirty, so the next flush tries again rather than taking it for clean.
        this.dirty = true;
        rej(new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `fsync of ${segmentFileName(this.baseOffset, '.log')} failed: ${err.message}`, { cause: err }));
      }),
    );
  }

  fsyncSync(): void {
    if (this.closed) return;
    this.dirty = false;
    fs.fsyncSync(this.logFd);
    fs.fsyncSync(this.indexFd);
    fs.fsyncSync(this.timeFd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.logFd);
    fs.closeSync(this.indexFd);
    fs.closeSync(this.timeFd);
  }

  deleteFiles(): void {
    this.close();
    for (const ext of ['.log', '.index', '.timeindex']) fs.rmSync(this.file(ext), { force: true });
  }
}
