/**
 * docs/errors.md stays in sync with the error registries: every code of every component is
 * documented with its registry meaning and retriable flag, and the page lists no code the
 * registry does not (fastify's errors test, for ferry). A second check holds the registries to
 * the error classes: every code a class carries at run time is registered, and the protocol
 * numbers equal the code tables they document.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerErrors } from '../../broker/errors.js';
import { DataDirLockedError } from '../../broker/log/dataDirLock.js';
import { DecodeErrorCode, ErrorCode } from '../../broker/protocol/errors.js';
import { MessageTooLargeError } from '../../kafka/index.js';
import { OpsErrors } from '../../ops/errors.js';
import { FerryProcessError } from '../../ops/ferry-process.js';
import { FreePortError } from '../../ops/free-port.js';
import { ReceiverError, ReceiverErrors } from '../../receiver/errors.js';
import { XdrConfigError } from '../../shipper/config.js';
import { ShipperError, ShipperErrors } from '../../shipper/errors.js';
import { NodeStartError } from '../../store/assembly/running-node.js';
import { ChecksumFormatError } from '../../store/checksums.js';
import { PartitionTableError } from '../../store/cluster/partition-table.js';
import { PartitionVersionsError } from '../../store/cluster/partition-versions.js';
import { ConfigError } from '../../store/config.js';
import type { ErrorRegistry } from '../../store/error-registry.js';
import { StoreErrors } from '../../store/errors.js';
import { StorageErrorCode } from '../../store/storage/errors.js';
import { ReplicationFailed } from '../../store/transaction/transaction.js';
import { ResultCode } from '../../store/types.js';
import { WireErrorCode, WireErrors } from '../../store/wire/errors.js';
import { ShipCodecError } from '../../store/xdr/shipped-record.js';

const registries: Record<string, ErrorRegistry> = {
  store: StoreErrors,
  wire: WireErrors,
  broker: BrokerErrors,
  shipper: ShipperErrors,
  receiver: ReceiverErrors,
  ops: OpsErrors,
};

const page = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'errors.md'), 'utf8');

/** The table rows of each `## component` section: code -> "number|retriable|meaning". */
function documented(): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let rows: Map<string, string> | undefined;
  for (const line of page.split('\n')) {
    const heading = /^## (\w+)\s*$/.exec(line);
    if (heading) {
      rows = new Map();
      out.set(heading[1]!, rows);
      continue;
    }
    const row = /^\| `([A-Z0-9_]+)`(?: \((-?\d+)\))? \| (yes|no) \| (.+?) \|$/.exec(line);
    if (row && rows) rows.set(row[1]!, `${row[2] ?? ''}|${row[3]}|${row[4]}`);
  }
  return out;
}

function expected(r: ErrorRegistry): Map<string, string> {
  return new Map(Object.entries(r).map(([code, e]) => [code, `${e.protocolCode ?? ''}|${e.retriable ? 'yes' : 'no'}|${e.meaning}`]));
}

function row(code: string, r: ErrorRegistry): string {
  const e = r[code]!;
  return `| \`${code}\`${e.protocolCode === undefined ? '' : ` (${e.protocolCode})`} | ${e.retriable ? 'yes' : 'no'} | ${e.meaning} |`;
}

test('docs/errors.md documents every registered code of every component, and nothing else', (t) => {
  const doc = documented();
  const problems: string[] = [];
  for (const c of doc.keys()) if (!(c in registries)) problems.push(`section "## ${c}" is no component`);
  for (const [component, registry] of Object.entries(registries)) {
    const rows = doc.get(component);
    if (!rows) {
      problems.push(`no "## ${component}" section`);
      continue;
    }
    const want = expected(registry);
    for (const c of want.keys()) {
      if (!rows.has(c)) problems.push(`${component}: missing, add ${row(c, registry)}`);
      else if (rows.get(c) !== want.get(c)) problems.push(`${component}: differs from the registry, should read ${row(c, registry)}`);
    }
    for (const c of rows.keys()) if (!want.has(c)) problems.push(`${component}: ${c} is in no registry, remove it`);
  }
  t.deepEqual(problems, []);
});

test('every code the error classes carry is registered, and protocol numbers match their code tables', (t) => {
  const has = (r: ErrorRegistry, codes: readonly (string | number)[]) => codes.filter((c) => !(String(c) in r));
  t.deepEqual(has(StoreErrors, Object.values(StorageErrorCode)), []);
  t.deepEqual(
    has(StoreErrors, [
      new ConfigError('x').code,
      new ChecksumFormatError('x').code,
      new PartitionTableError('x').code,
      new PartitionVersionsError('x').code,
      new ShipCodecError('x').code,
      new NodeStartError('STORE', 'x').code,
      new ReplicationFailed(ResultCode.TIMEOUT, 'x').code,
    ]),
    [],
  );
  t.deepEqual(has(WireErrors, Object.values(WireErrorCode)), []);
  t.deepEqual(has(BrokerErrors, [...Object.values(DecodeErrorCode), new DataDirLockedError('x').code]), []);
  t.deepEqual(has(ShipperErrors, [new XdrConfigError('x').code, new MessageTooLargeError('x').code]), []);
  t.deepEqual(has(OpsErrors, [new FerryProcessError('x').code, new FreePortError('x').code]), []);
  const stopped = new ShipperError('STOPPED', 'x');
  t.is(stopped.retriable, ShipperErrors.STOPPED.retriable);
  const busy = new ReceiverError('DESTINATION_BUSY', 'x', { cause: new Error('inner') });
  t.is(busy.retriable, true);
  t.is((busy.cause as Error).message, 'inner');
  for (const [name, n] of Object.entries(ResultCode)) {
    if (name !== 'OK') t.is((WireErrors as ErrorRegistry)[name]?.protocolCode, n, `result code ${name}`);
  }
  for (const [name, n] of Object.entries(ErrorCode)) {
    if (name !== 'NONE') t.is((BrokerErrors as ErrorRegistry)[name]?.protocolCode, n, `Kafka error code ${name}`);
  }
});
