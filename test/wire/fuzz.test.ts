/**
 * Bad input against a real node: garbage, wrong version, oversize and truncated frames, unknown
 * field and op types, long bin names, random and mutated valid frames. Afterwards the node must
 * still serve the official client with every record intact.
 */
import test from 'ava';
import net from 'node:net';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { startNode, type NodeProcess } from './node-process.js';
import { computeDigest } from '../../store/digest.js';
import { FieldType, decodeMsgs, emptyHeader, encodeMsgFrame, field, op } from '../../store/wire/message.js';
import { encodeBatchField } from '../../store/wire/batch.js';
import { encodeInfoRequestFrame } from '../../store/wire/info-codec.js';
import { PROTO_BODY_BYTES_MAX, encodeProtoHeader, compressMessage, encodeFrame } from '../../store/wire/proto.js';
import { ResultCode } from '../../store/types.js';
import { randomBuffer, testRandom } from '../helpers/seed.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');

/** How long a raw socket waits for more bytes before the exchange is considered answered. */
const QUIET_MS = 300;
const EXCHANGE_TIMEOUT_MS = 5_000;

let node: NodeProcess;
let client: Any;
let ns = 'test';
const SAFE = 100;

interface Exchange {
  data: Buffer;
  closedByServer: boolean;
}

/** Sends bytes on a fresh socket; collects the reply until the server closes or goes quiet. */
function exchange(bytes: Buffer, opts: { endAfterWrite?: boolean } = {}): Promise<Exchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: node.host, port: node.port });
    let quiet: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(quiet);
      clearTimeout(hard);
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closedByServer });
    };
    const hard = setTimeout(() => finish(false), EXCHANGE_TIMEOUT_MS);
    const arm = (): void => {
      clearTimeout(quiet);
      quiet = setTimeout(() => finish(false), QUIET_MS);
    };
    s.on('connect', () => {
      s.write(bytes);
      if (opts.endAfterWrite) s.end();
      arm();
    });
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      arm();
    });
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
  });
}

const digestOf = (k: string, set = 'fuzz'): Buffer => computeDigest(set, k);
const recordFields = (k: string, set = 'fuzz'): ReturnType<typeof field>[] => [field(FieldType.NAMESPACE, ns), field(FieldType.SET, set), field(FieldType.DIGEST, digestOf(k, set))];

function validFrames(): Buffer[] {
  const put = encodeMsgFrame({ ...emptyHeader(), info2: 1, transactionTtl: 1000 }, recordFields('p'), [op(2, 'a', 1, Buffer.alloc(8, 1)), op(2, 's', 3, Buffer.from('hello'))]);
  const get = encodeMsgFrame({ ...emptyHeader(), info1: 3, transactionTtl: 1000 }, recordFields('p'));
  const operate = encodeMsgFrame({ ...emptyHeader(), info1: 1, info2: 1 }, recordFields('p'), [op(5, 'a', 1, Buffer.alloc(8, 0)), op(1, 'a')]);
  const batch = encodeMsgFrame({ ...emptyHeader(), info1: 8, transactionTtl: 1000 }, [
    field(
      FieldType.BATCH_INDEX,
      encodeBatchField({
        flags: 0x0d,
        rows: [
          { index: 0, digest: digestOf('p'), repeat: false, info1: 3, info2: 0, info3: 0, info4: 0, generation: 0, recordTtl: 0, fields: [field(0, ns), field(1, 'fuzz')], ops: [] },
          { index: 1, digest: digestOf('q'), repeat: true, info1: 3, info2: 0, info3: 0, info4: 0, generation: 0, recordTtl: 0, fields: [field(0, ns), field(1, 'fuzz')], ops: [] },
        ],
      }),
    ),
  ]);
  const pids = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) pids.writeUInt16LE(i * 500, i * 2);
  const scan = encodeMsgFrame({ ...emptyHeader(), info1: 1, info3: 4, recordTtl: 0xffffffff }, [field(0, ns), field(1, 'fuzz'), field(FieldType.PID_ARRAY, pids)]);
  const info = encodeInfoRequestFrame(['node', 'build', 'statistics', `namespace/${ns}`]);
  return [put, get, operate, batch, scan, info, compressMessage(put)];
}

test.before(async () => {
  node = await startNode();
  client = await Aerospike.connect({ hosts: [{ addr: node.host, port: node.port }], log: { level: Aerospike.log.OFF } });
  const namespaces = String(await client.infoAny('namespaces')).split('\t')[1]!.trim().split(';');
  ns = namespaces.includes('test') ? 'test' : namespaces[0]!;
  for (let i = 0; i < SAFE; i++) await client.put(new Aerospike.Key(ns, 'safe', `k${i}`), { i, s: `value-${i}`, b: Buffer.from([i]) });
});

test.after.always(async () => {
  await client?.close();
  await node?.destroy();
});

test.serial('framing errors close only that connection', async (t) => {
  const garbage = await exchange(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  t.true(garbage.closedByServer);
  t.is(garbage.data.length, 0);
  const wrongVersion = Buffer.from(encodeInfoRequestFrame(['node']));
  wrongVersion[0] = 1;
  t.true((await exchange(wrongVersion)).closedByServer);
  const oversize = encodeProtoHeader(3, 0);
  oversize.writeUIntBE(PROTO_BODY_BYTES_MAX + 1, 2, 6);
  t.true((await exchange(oversize)).closedByServer);
  t.true((await exchange(encodeFrame(9, Buffer.from('x')))).closedByServer);
  const badZip = encodeFrame(4, Buffer.concat([Buffer.from('0000000000000040', 'hex'), randomBytes(40)]));
  t.true((await exchange(badZip)).closedByServer);
  // A truncated frame followed by our FIN: nothing is answered, nothing breaks.
  const put = validFrames()[0]!;
  const truncated = await exchange(put.subarray(0, put.length - 5), { endAfterWrite: true });
  t.is(truncated.data.length, 0);
  t.true(await client.exists(new Aerospike.Key(ns, 'safe', 'k1')));
});

test.serial('malformed AS_MSG bodies get an error result and the connection keeps serving', async (t) => {
  const infoFrame = encodeInfoRequestFrame(['build']);
  const rcOf = (data: Buffer): number => decodeMsgs(data.subarray(8, 8 + data.readUIntBE(2, 6)))[0]!.resultCode;
  // A field whose size runs past the body.
  const broken = encodeMsgFrame({ ...emptyHeader(), info1: 3 }, recordFields('x'));
  broken.writeUInt32BE(5000, 8 + 22);
  const r = await exchange(Buffer.concat([broken, infoFrame]));
  t.false(r.closedByServer);
  t.is(rcOf(r.data), ResultCode.PARAMETER);
  t.regex(r.data.subarray(8 + r.data.readUIntBE(2, 6)).toString(), /build\t8\.1\.1\.0/);
  const longBin = await exchange(encodeMsgFrame({ ...emptyHeader(), info2: 1 }, recordFields('x'), [op(2, 'a-bin-name-of-16', 3, Buffer.from('v'))]));
  t.is(rcOf(longBin.data), ResultCode.BIN_NAME);
  const unknownOp = await exchange(encodeMsgFrame({ ...emptyHeader(), info2: 1 }, recordFields('x'), [op(99, 'a', 3, Buffer.from('v'))]));
  t.is(rcOf(unknownOp.data), ResultCode.PARAMETER);
  const unknownField = await exchange(encodeMsgFrame({ ...emptyHeader(), info1: 3 }, [...recordFields('x'), field(200, 'zz')]));
  t.is(rcOf(unknownField.data), ResultCode.PARAMETER);
  const unknownNs = await exchange(encodeMsgFrame({ ...emptyHeader(), info1: 3 }, [field(0, 'nope'), field(1, ''), field(4, digestOf('x'))]));
  t.is(rcOf(unknownNs.data), ResultCode.NAMESPACE_NOT_FOUND);
  const badHeaderSize = encodeMsgFrame({ ...emptyHeader(), info1: 3 }, recordFields('x'));
  badHeaderSize[8] = 30;
  t.is(rcOf((await exchange(badHeaderSize)).data), ResultCode.PARAMETER);
  const badBatch = encodeMsgFrame({ ...emptyHeader(), info1: 8 }, [field(FieldType.BATCH_INDEX, Buffer.from('00000005 0d'.replace(' ', ''), 'hex'))]);
  const bb = decodeMsgs((await exchange(badBatch)).data.subarray(8));
  t.is(bb.at(-1)!.resultCode, ResultCode.PARAMETER);
  t.is(bb.at(-1)!.info3 & 1, 1);
  const adminLogin = encodeFrame(2, Buffer.concat([Buffer.from('0000140000000000000000000000000000', 'hex').subarray(0, 16)]));
  const admin = await exchange(adminLogin);
  t.is(admin.data[8 + 1], ResultCode.SECURITY_NOT_ENABLED);
});

test.serial('random and mutated frames never take the node down or harm stored data', async (t) => {
  const valid = validFrames();
  const inputs: Buffer[] = [];
  const r = testRandom(t);
  for (let i = 0; i < 300; i++) inputs.push(randomBuffer(r, r.int(300)));
  for (let i = 0; i < 150; i++) {
    // Random bytes behind a valid header: the body parser gets the garbage.
    const body = randomBuffer(r, r.int(200));
    inputs.push(Buffer.concat([encodeProtoHeader(1 + r.int(4), body.length), body]));
  }
  for (let i = 0; i < 600; i++) {
    const base = Buffer.from(valid[i % valid.length]!);
    const flips = 1 + r.int(6);
    for (let f = 0; f < flips; f++) base[r.int(base.length)] = r.int(256);
    if (i % 2 === 0) {
      // Keep the proto header valid so the mutation reaches the message parsers.
      base[0] = 2;
      base.writeUIntBE(base.length - 8, 2, 6);
    }
    inputs.push(i % 7 === 0 ? base.subarray(0, r.int(base.length)) : base);
  }
  let answered = 0;
  let closed = 0;
  for (let i = 0; i < inputs.length; i += 25) {
    const results = await Promise.all(inputs.slice(i, i + 25).map((b) => exchange(b)));
    for (const r of results) {
      if (r.data.length > 0) answered++;
      if (r.closedByServer) closed++;
    }
  }
  t.log(`${inputs.length} inputs: ${answered} answered, ${closed} closed by the node`);
  t.true(answered > 0);
  t.true(closed > 0);
  for (let i = 0; i < SAFE; i++) {
    const r = await client.get(new Aerospike.Key(ns, 'safe', `k${i}`));
    t.deepEqual(r.bins, { i, s: `value-${i}`, b: Buffer.from([i]) });
  }
  // A fresh official client can still connect and write.
  const fresh = await Aerospike.connect({ hosts: [{ addr: node.host, port: node.port }], log: { level: Aerospike.log.OFF } });
  await fresh.put(new Aerospike.Key(ns, 'safe', 'after-fuzz'), { ok: 1 });
  t.is((await fresh.get(new Aerospike.Key(ns, 'safe', 'after-fuzz'))).bins.ok, 1);
  await fresh.close();
});
