/** Metadata (3) v0–v4. */
import { Reader, Writer } from '../codec.js';

export interface MetadataRequest {
  /** null = all topics. */
  topics: string[] | null;
  allowAutoTopicCreation: boolean;
}

export function decodeMetadata(r: Reader, version: number): MetadataRequest {
  let topics = r.nullableArray((r) => r.string());
  if (version === 0 && topics !== null && topics.length === 0) topics = null;
  const allowAutoTopicCreation = version >= 4 ? r.bool() : true;
  return { topics, allowAutoTopicCreation };
}

export interface MetadataBroker {
  nodeId: number;
  host: string;
  port: number;
}
export interface MetadataTopic {
  errorCode: number;
  name: string;
  partitions: { errorCode: number; index: number; leader: number }[];
}
export interface MetadataResponse {
  brokers: MetadataBroker[];
  clusterId: string;
  controllerId: number;
  topics: MetadataTopic[];
}

export function encodeMetadata(res: MetadataResponse, version: number): Writer {
  const w = new Writer();
  if (version >= 3) w.int32(0);
  w.array(res.brokers, (w, b) => {
    w.int32(b.nodeId).string(b.host).int32(b.port);
    if (version >= 1) w.nullableString(null);
  });
  if (version >= 2) w.nullableString(res.clusterId);
  if (version >= 1) w.int32(res.controllerId);
  w.array(res.topics, (w, t) => {
    w.int16(t.errorCode).string(t.name);
    if (version >= 1) w.bool(false);
    w.array(t.partitions, (w, p) => {
      w.int16(p.errorCode).int32(p.index).int32(p.leader);
      const nodes = p.leader >= 0 ? [p.leader] : [];
      w.array(nodes, (w, n) => w.int32(n));
      w.array(nodes, (w, n) => w.int32(n));
    });
  });
  return w;
}
