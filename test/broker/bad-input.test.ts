import net from 'node:net';
import test from 'ava';
import { buildBatch, int16, int32, produceFrame } from './batches.js';
import { broker, kafka, waitFor } from './helpers.js';

const replyTimeoutMs = 5000;

/** One raw connection: sends bytes, reads size-prefixed response frames, notices a close. */
class RawClient {
  private buf = Buffer.alloc(0);
  private waiting: ((v: Buffer | 'closed') => void) | null = null;
  closed = false;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.deliver();
    });
    socket.on('close', () => {
      this.closed = true;
      this.deliver();
    });
    socket.on('error', () => undefined);
  }
  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }
  private deliver(): void {
    if (!this.waiting) return;
    if (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readInt32BE(0)) {
      const size = this.buf.readInt32BE(0);
      const frame = this.buf.subarray(4, 4 + size);
      this.buf = this.buf.subarray(4 + size);
      const w = this.waiting;
      this.waiting = null;
      w(frame);
    } else if (this.closed) {
      const w = this.waiting;
      this.waiting = null;
      w('closed');
    }
  }
  /** Next response frame, or 'closed' if the broker closed the connection. */
  next(): Promise<Buffer | 'closed'> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply and no close')), replyTimeoutMs);
      this.waiting = (v) => {
        clearTimeout(timer);
        resolve(v);
      };
      this.deliver();
    });
  }
  send(b: Buffer): Promise<Buffer | 'closed'> {
    this.socket.write(b);
    return this.next();
  }
  end(): void {
    this.socket.destroy();
  }
}

function request(apiKey: number, version: number, correlationId: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const client = Buffer.from('raw');
  const payload = Buffer.concat([int16(apiKey), int16(version), int32(correlationId), int16(client.length), client, body]);
  return Buffer.concat([int32(payload.length), payload]);
}

test('bad input: garbage, unknown keys/versions, oversize and truncated frames close only that connection; bad CRC refused and not stored', async (t) => {
  const b = await broker(t, { requestBytesMax: 1024 * 1024 });
  const raw = async (): Promise<RawClient> => {
    const c = await RawClient.connect(b.port);
    t.teardown(() => c.end());
    return c;
  };
  // A bystander connection that must keep working throughout.
  const bystander = await raw();

  // ApiVersions above our max: error 35 with a v0 body listing ApiVersions itself; connection stays.
  const apiv = await raw();
  // As librdkafka sends it: v3, header v2 (tag buffer), compact-string body.
  const v3body = Buffer.concat([Buffer.from([0]), Buffer.from([11]), Buffer.from('librdkafka'), Buffer.from([6]), Buffer.from('2.0.2'), Buffer.from([0])]);
  const r35 = await apiv.send(request(18, 3, 7, v3body));
  t.not(r35, 'closed');
  const f = r35 as Buffer;
  t.is(f.readInt32BE(0), 7);
  t.is(f.readInt16BE(4), 35);
  t.is(f.readInt32BE(6), 1);
  t.is(f.readInt16BE(10), 18);
  t.is(((await apiv.send(request(18, 9, 9))) as Buffer).readInt16BE(4), 35);
  const ok = (await apiv.send(request(18, 0, 8))) as Buffer;
  t.is(ok.readInt16BE(4), 0);
  t.true(ok.readInt32BE(6) >= 18);

  t.is(await (await raw()).send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 'closed');
  t.is(await (await raw()).send(request(999, 0, 1)), 'closed');
  t.is(await (await raw()).send(request(3, 12, 1)), 'closed');
  t.is(await (await raw()).send(Buffer.concat([int32(2 * 1024 * 1024), Buffer.alloc(100)])), 'closed');
  t.is(await (await raw()).send(int32(-5)), 'closed');
  // Metadata v1 declaring a million topics in a 4-byte body.
  t.is(await (await raw()).send(request(3, 1, 1, int32(1_000_000))), 'closed');

  // Produce to a missing topic: UNKNOWN_TOPIC_OR_PARTITION (no auto-creation on produce).
  const prod = await raw();
  const missing = (await prod.send(produceFrame('nope', 0, buildBatch({ values: ['x'] })))) as Buffer;
  t.is(partitionError(missing), 3);

  // A batch with a broken CRC: CORRUPT_MESSAGE, nothing stored; the next good batch gets offset 0.
  const admin = kafka(b).admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  await admin.createTopics({ topics: [{ topic: 'crc', numPartitions: 1 }] });
  const bad = buildBatch({ values: ['evil'] });
  bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
  t.is(partitionError((await prod.send(produceFrame('crc', 0, bad))) as Buffer), 2);
  // Two batches in one partition's records: INVALID_RECORD.
  const two = Buffer.concat([buildBatch({ values: ['a'] }), buildBatch({ values: ['b'] })]);
  t.is(partitionError((await prod.send(produceFrame('crc', 0, two))) as Buffer), 87);
  // Invalid acks.
  t.is(partitionError((await prod.send(produceFrame('crc', 0, buildBatch({ values: ['a'] }), 5))) as Buffer), 21);
  t.is((await admin.fetchTopicOffsets('crc'))[0]!.high, '0');
  const good = (await prod.send(produceFrame('crc', 0, buildBatch({ values: ['fine'] })))) as Buffer;
  t.is(partitionError(good), 0);
  t.is(good.readBigInt64BE(good.length - 4 - 16), 0n);
  t.is((await admin.fetchTopicOffsets('crc'))[0]!.high, '1');
  // acks=0: no response at all; the next request's answer comes next, in order.
  prod.socket.write(produceFrame('crc', 0, buildBatch({ values: ['quiet'] }), 0, 50));
  const after = (await prod.send(request(18, 0, 51))) as Buffer;
  t.is(after.readInt32BE(0), 51);
  // Under the fsync policy the high watermark moves once the (unawaited) flush round is done.
  await waitFor(async () => (await admin.fetchTopicOffsets('crc'))[0]!.high === '2', 5000, 'the acks=0 record to become visible');

  // The bystander and new kafkajs clients are unaffected.
  const still = (await bystander.send(request(18, 2, 99))) as Buffer;
  t.is(still.readInt32BE(0), 99);
  t.deepEqual((await admin.listTopics()).sort(), ['crc']);
  t.is(b.metrics().find((m) => m.name === 'ferry_broker_log_end_offset' && m.labels?.['topic'] === 'crc' && m.labels['partition'] === '0')?.value, 2);
});

/** Error code of the single partition in a Produce v3 response frame. */
function partitionError(frame: Buffer): number {
  // correlation id, [topics] count, topic name, [partitions] count, index, error_code ...
  let at = 4 + 4;
  const nameLen = frame.readInt16BE(at);
  at += 2 + nameLen + 4 + 4;
  return frame.readInt16BE(at);
}
