/**
 * Group membership APIs: FindCoordinator (10) v0–v2, JoinGroup (11) v0–v3, SyncGroup (14) v0–v2,
 * Heartbeat (12) v0–v2, LeaveGroup (13) v0–v1, DescribeGroups (15) v0–v2, ListGroups (16) v0–v2.
 */
import { Reader, Writer } from '../codec.js';

export function decodeFindCoordinator(r: Reader, version: number): { key: string; keyType: number } {
  const key = r.string();
  const keyType = version >= 1 ? r.int8() : 0;
  return { key, keyType };
}

export interface FindCoordinatorResponse {
  errorCode: number;
  nodeId: number;
  host: string;
  port: number;
}
export function encodeFindCoordinator(res: FindCoordinatorResponse, version: number): Writer {
  const w = new Writer();
  if (version >= 1) w.int32(0);
  w.int16(res.errorCode);
  if (version >= 1) w.nullableString(null);
  return w.int32(res.nodeId).string(res.host).int32(res.port);
}

export interface JoinGroupRequest {
  groupId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  memberId: string;
  protocolType: string;
  protocols: { name: string; metadata: Buffer }[];
}
export function decodeJoinGroup(r: Reader, version: number): JoinGroupRequest {
  const groupId = r.string();
  const sessionTimeoutMs = r.int32();
  const rebalanceTimeoutMs = version >= 1 ? r.int32() : sessionTimeoutMs;
  const memberId = r.string();
  const protocolType = r.string();
  const protocols = r.array((r) => ({ name: r.string(), metadata: Buffer.from(r.bytes()) }));
  return { groupId, sessionTimeoutMs, rebalanceTimeoutMs, memberId, protocolType, protocols };
}

export interface JoinGroupResponse {
  errorCode: number;
  generationId: number;
  protocolName: string;
  leader: string;
  memberId: string;
  members: { memberId: string; metadata: Buffer }[];
}
export function encodeJoinGroup(res: JoinGroupResponse, version: number): Writer {
  const w = new Writer();
  if (version >= 2) w.int32(0);
  w.int16(res.errorCode).int32(res.generationId).string(res.protocolName).string(res.leader).string(res.memberId);
  return w.array(res.members, (w, m) => w.string(m.memberId).bytes(m.metadata));
}

export interface SyncGroupRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  assignments: { memberId: string; assignment: Buffer }[];
}
export function decodeSyncGroup(r: Reader): SyncGroupRequest {
  const groupId = r.string();
  const generationId = r.int32();
  const memberId = r.string();
  const assignments = r.array((r) => ({ memberId: r.string(), assignment: Buffer.from(r.bytes()) }));
  return { groupId, generationId, memberId, assignments };
}
export function encodeSyncGroup(res: { errorCode: number; assignment: Buffer }, version: number): Writer {
  const w = new Writer();
  if (version >= 1) w.int32(0);
  return w.int16(res.errorCode).bytes(res.assignment);
}

export function decodeHeartbeat(r: Reader): { groupId: string; generationId: number; memberId: string } {
  return { groupId: r.string(), generationId: r.int32(), memberId: r.string() };
}
export function decodeLeaveGroup(r: Reader): { groupId: string; memberId: string } {
  return { groupId: r.string(), memberId: r.string() };
}
/** Heartbeat and LeaveGroup share this response layout. */
export function encodeErrorOnly(errorCode: number, version: number): Writer {
  const w = new Writer();
  if (version >= 1) w.int32(0);
  return w.int16(errorCode);
}

export function decodeDescribeGroups(r: Reader): { groups: string[] } {
  return { groups: r.array((r) => r.string()) };
}
export interface DescribedGroup {
  errorCode: number;
  groupId: string;
  state: string;
  protocolType: string;
  protocolData: string;
  members: { memberId: string; clientId: string; clientHost: string; metadata: Buffer; assignment: Buffer }[];
}
export function encodeDescribeGroups(groups: DescribedGroup[], version: number): Writer {
  const w = new Writer();
  if (version >= 1) w.int32(0);
  return w.array(groups, (w, g) => {
    w.int16(g.errorCode).string(g.groupId).string(g.state).string(g.protocolType).string(g.protocolData);
    w.array(g.members, (w, m) =>
      w.string(m.memberId).string(m.clientId).string(m.clientHost).bytes(m.metadata).bytes(m.assignment),
    );
  });
}

export function encodeListGroups(groups: { groupId: string; protocolType: string }[], version: number): Writer {
  const w = new Writer();
  if (version >= 1) w.int32(0);
  w.int16(0);
  return w.array(groups, (w, g) => w.string(g.groupId).string(g.protocolType));
}
