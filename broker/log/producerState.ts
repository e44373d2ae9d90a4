/**
 * Idempotent-producer bookkeeping for one partition: per producer id, its epoch and the last
 * few appended batches (first/last sequence and base offset), so a retried batch is answered
 * with its original offset instead of being stored twice.
 */
import { ErrorCode, KafkaError } from '../protocol/errors.js';

/** Batches remembered per producer (Kafka allows 5 in flight). */
export const producerBatchesKept = 5;
const sequenceMax = 0x7fffffff;

interface BatchMeta {
  firstSeq: number;
  lastSeq: number;
  baseOffset: number;
}
interface ProducerEntry {
  epoch: number;
  batches: BatchMeta[];
}

export function lastSequence(baseSequence: number, lastOffsetDelta: number): number {
  const s = baseSequence + lastOffsetDelta;
  return s > sequenceMax ? s - sequenceMax - 1 : s;
}

export class ProducerState {
  private readonly producers = new Map<number, ProducerEntry>();

  /**
   * Checks a batch before it is appended. Returns the original base offset for a duplicate,
   * null for a batch to append; throws KafkaError for a sequence gap or a fenced epoch.
   */
  check(producerId: number, epoch: number, firstSeq: number, lastSeq: number): number | null {
    if (producerId < 0) return null;
    const e = this.producers.get(producerId);
    if (e === undefined || epoch > e.epoch) return null;
    if (epoch < e.epoch) throw new KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH, `epoch ${epoch} < ${e.epoch}`);
    for (const b of e.batches) if (b.firstSeq === firstSeq && b.lastSeq === lastSeq) return b.baseOffset;
    const last = e.batches[e.batches.length - 1];
    if (last !== undefined) {
      const expected = last.lastSeq === sequenceMax ? 0 : last.lastSeq + 1;
      if (firstSeq !== expected) {
        throw new KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, `sequence ${firstSeq}, expected ${expected}`);
      }
    }
    return null;
  }

  record(producerId: number, epoch: number, firstSeq: number, lastSeq: number, baseOffset: number): void {
    if (producerId < 0) return;
    let e = this.producers.get(producerId);
    if (e === undefined || epoch !== e.epoch) {
      e = { epoch, batches: [] };
      this.producers.set(producerId, e);
    }
    e.batches.push({ firstSeq, lastSeq, baseOffset });
    if (e.batches.length > producerBatchesKept) e.batches.shift();
  }
}
