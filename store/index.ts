/**
 * The public surface of store/: everything shipper/, receiver/, ops/ and bench/ may use. Folders
 * outside store/ import from here only, never a file inside store/ (a test keeps it so).
 *
 *   node and assembly   FerryNode.start (a running node), openStoreNode, openNamespace
 *   api                 StoreNode / StoreNamespace / NodeExtension: the node as extensions see it
 *   client              FerryClient, the partition-aware Aerospike client ferry uses itself
 *   xdr                 the shipped-record format (shipper encodes, receiver decodes)
 *   runtime             Clock, Timers, Random: the seams every component takes
 *   types, digest       the data model: record versions, result codes, digests and partitions
 */
export * from './types.js';
export { computeDigest, partitionOf, userKeyOf, type KeyInput } from './digest.js';
export type { AckGate, GatedVersion, ApplyResult, InfoHandler, InfoRequest, MetricSample, NodeExtension, PartitionOwnership, ScanOptions, StoreNamespace, StoreNode, WriteLogReader } from './api.js';
export * from './runtime/index.js';
export { ConfigError, loadNodeConfig, type NamespaceConfig, type NodeConfig } from './config.js';
export { FerryNode, openNamespace, openStoreNode, type StoreRuntime } from './node.js';
export type { Namespace } from './namespace/namespace.js';
export * from './assembly/index.js';
export type { ClusterDescription } from './cluster/cluster.js';
export * from './client/client.js';
export { AerospikeError } from './wire/errors.js';
export { parsePartitionBitmap } from './wire/info.js';
export { parseInfoError } from './wire/info-codec.js';
export { parseChecksums, parseListing, type DigestEntry, type PartitionChecksum } from './checksums.js';
export * from './xdr/shipped-record.js';
export { RegisteredError, type AllRegistered, type ErrorCodeInfo, type ErrorRegistry } from './error-registry.js';
export { StoreErrors } from './errors.js';
export { WireErrors } from './wire/errors.js';
