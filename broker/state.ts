/**
 * Everything a request handler needs: topics, groups, the fsync scheduler, fetch long-poll
 * wake-ups and the broker's identity. Created by startBroker, shared by all connections.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { lockDataDir } from './log/dataDirLock.js';
import { Flusher } from './log/flusher.js';
import { TopicStore } from './log/topicStore.js';
import type { LogConfig } from './log/partitionLog.js';
import { GroupCoordinator } from './group/coordinator.js';
import { OffsetStore } from './group/offsetStore.js';

export type FlushPolicy = 'fsync' | 'os';

export interface BrokerConfig {
  dataDir: string;
  nodeId: number;
  advertisedHost: string;
  advertisedPort: number;
  defaultPartitions: number;
  autoCreateTopics: boolean;
  flushPolicy: FlushPolicy;
  log: LogConfig;
  maxBatchBytes: number;
  /** Upper bound on a Fetch long poll, whatever the client asks. */
  fetchWaitMsMax: number;
}

/** Producer ids handed out per persisted block. */
export const producerIdBlockSize = 1000;

export class BrokerState {
  readonly topics: TopicStore;
  readonly offsets: OffsetStore;
  readonly groups: GroupCoordinator;
  readonly flusher = new Flusher(() => this.notifyData());
  readonly clusterId: string;
  private readonly dataWaiters = new Set<() => void>();
  private nextProducerId = 0;
  private producerIdLimit = 0;
  closed = false;
  private readonly unlock: () => void;

  constructor(readonly config: BrokerConfig, sessionTimeoutMsMin: number) {
    fs.mkdirSync(config.dataDir, { recursive: true });
    this.unlock = lockDataDir(config.dataDir);
    try {
      const metaFile = path.join(config.dataDir, 'broker.json');
      let meta: { clusterId: string; nextProducerId: number };
      if (fs.existsSync(metaFile)) meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as typeof meta;
      else meta = { clusterId: randomUUID().replace(/-/g, '').slice(0, 22), nextProducerId: 1000 };
      this.clusterId = meta.clusterId;
      this.nextProducerId = meta.nextProducerId;
      this.producerIdLimit = meta.nextProducerId;
      // Written only when new: a broker must start (and serve reads) on a full disk.
      if (!fs.existsSync(metaFile)) this.writeMeta(meta.nextProducerId);
      this.topics = new TopicStore(config.dataDir, config.log);
      this.offsets = new OffsetStore(config.dataDir);
      this.groups = new GroupCoordinator(this.offsets, { sessionTimeoutMsMin });
    } catch (err) {
      (this as { topics?: TopicStore }).topics?.close();
      this.unlock();
      throw err;
    }
  }

  private writeMeta(nextProducerId: number): void {
    const file = path.join(this.config.dataDir, 'broker.json');
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ clusterId: this.clusterId, nextProducerId }));
    const fd = fs.openSync(tmp, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  }

  /** A producer id never handed out before, even across restarts (blocks persisted ahead). */
  allocateProducerId(): number {
    if (this.nextProducerId >= this.producerIdLimit) {
      this.producerIdLimit = this.nextProducerId + producerIdBlockSize;
      this.writeMeta(this.producerIdLimit);
    }
    return this.nextProducerId++;
  }

  /** Wakes fetches parked in a long poll. */
  notifyData(): void {
    for (const w of [...this.dataWaiters]) w();
  }

  /** Resolves on the next append anywhere or after `ms`. */
  waitForData(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.dataWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.dataWaiters.add(done);
    });
  }

  /** Releases the data-directory lock (idempotent; close does it too). */
  releaseLock(): void {
    this.unlock();
  }

  close(): void {
    this.closed = true;
    this.notifyData();
    this.groups.close();
    this.topics.close();
    this.offsets.close();
    this.unlock();
  }
}
