/**
 * Where write blocks live: files (or block devices) on disk, or buffers in memory. A device set
 * is a flat array of equally sized blocks; block b of a set with N blocks per file lives in file
 * floor(b / N) at byte (b % N) * blockBytes.
 */
import { closeSync, fstatSync, ftruncateSync, readSync, mkdirSync } from 'node:fs';
import { open as openAsync, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StorageError } from './errors.js';

export interface BlockDevice {
  readonly blockBytes: number;
  readonly blockCount: number;
  readonly persistent: boolean;
  /** Reads `length` bytes at `offset` of block `b` into a buffer (a view for memory devices). */
  read(b: number, offset: number, length: number): Buffer;
  /** Writes bytes into a block (async for files; memory devices copy at once). */
  write(b: number, offset: number, bytes: Buffer): Promise<void>;
  /** Makes every completed write durable. */
  sync(): Promise<void>;
  /** Frees memory of a block (memory devices); no-op for files. */
  release(b: number): void;
  close(): Promise<void>;
}

export class MemoryDevice implements BlockDevice {
  readonly persistent = false;
  private readonly blocks: Array<Buffer | undefined>;
  constructor(
    readonly blockBytes: number,
    readonly blockCount: number,
  ) {
    this.blocks = new Array<Buffer | undefined>(blockCount);
  }
  private block(b: number): Buffer {
    let buf = this.blocks[b];
    if (!buf) {
      buf = Buffer.alloc(this.blockBytes);
      this.blocks[b] = buf;
    }
    return buf;
  }
  read(b: number, offset: number, length: number): Buffer {
    return this.block(b).subarray(offset, offset + length);
  }
  write(b: number, offset: number, bytes: Buffer): Promise<void> {
    bytes.copy(this.block(b), offset);
    return Promise.resolve();
  }
  /** The block's own buffer, so the write buffer of a memory namespace is the block itself. */
  blockBuffer(b: number): Buffer {
    return this.block(b);
  }
  sync(): Promise<void> {
    return Promise.resolve();
  }
  release(b: number): void {
    this.blocks[b] = undefined;
  }
  close(): Promise<void> {
    this.blocks.fill(undefined);
    return Promise.resolve();
  }
}

interface OpenFile {
  path: string;
  fd: number;
  handle: FileHandle;
}

export class FileDevice implements BlockDevice {
  readonly persistent = true;
  readonly blockCount: number;
  private readonly blocksPerFile: number;
  private constructor(
    readonly blockBytes: number,
    private readonly files: OpenFile[],
    fileBytes: number,
  ) {
    this.blocksPerFile = Math.floor(fileBytes / blockBytes);
    this.blockCount = this.blocksPerFile * files.length;
  }

  /** Opens (creating and sizing as needed) every file; refuses to shrink one that holds data. */
  static async open(paths: string[], fileBytes: number, blockBytes: number): Promise<FileDevice> {
    if (paths.length === 0) throw new StorageError('CONFIG', 'a device namespace needs at least one file');
    if (fileBytes < blockBytes) {
      throw new StorageError('CONFIG', `device size ${fileBytes} bytes is smaller than one write block (${blockBytes} bytes)`);
    }
    const files: OpenFile[] = [];
    for (const path of paths) {
      mkdirSync(dirname(path), { recursive: true });
      const handle = await openAsync(path, 'a+').then(async (h) => {
        await h.close();
        return openAsync(path, 'r+');
      });
      const fd = handle.fd;
      const size = fstatSync(fd).size;
      const isBlockDevice = fstatSync(fd).isBlockDevice();
      if (!isBlockDevice && size !== fileBytes) {
        if (size > fileBytes) {
          await handle.close();
          throw new StorageError('CONFIG', `device ${path} is ${size} bytes, larger than the configured size ${fileBytes}; shrinking would lose data`);
        }
        ftruncateSync(fd, fileBytes);
      }
      files.push({ path, fd, handle });
    }
    return new FileDevice(blockBytes, files, fileBytes);
  }

  private locate(b: number, offset: number): { file: OpenFile; position: number } {
    const file = this.files[Math.floor(b / this.blocksPerFile)];
    if (!file || b < 0) throw new RangeError(`block ${b} is outside the device (${this.blockCount} blocks)`);
    return { file, position: (b % this.blocksPerFile) * this.blockBytes + offset };
  }

  read(b: number, offset: number, length: number): Buffer {
    const { file, position } = this.locate(b, offset);
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(file.fd, buf, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    if (done < length) buf.fill(0, done);
    return buf;
  }

  async write(b: number, offset: number, bytes: Buffer): Promise<void> {
    const { file, position } = this.locate(b, offset);
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await file.handle.write(bytes, done, bytes.length - done, position + done);
      done += bytesWritten;
    }
  }

  async sync(): Promise<void> {
    await Promise.all(this.files.map((f) => f.handle.datasync()));
  }

  release(): void {}

  async close(): Promise<void> {
    for (const f of this.files) await f.handle.close().catch(() => closeSync(f.fd));
  }
}
