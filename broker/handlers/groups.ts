/** Group coordinator handlers: FindCoordinator through ListGroups, OffsetCommit, OffsetFetch. */
import { ErrorCode } from '../protocol/errors.js';
import {
  decodeDescribeGroups,
  decodeFindCoordinator,
  decodeHeartbeat,
  decodeJoinGroup,
  decodeLeaveGroup,
  decodeSyncGroup,
  encodeDescribeGroups,
  encodeErrorOnly,
  encodeFindCoordinator,
  encodeJoinGroup,
  encodeListGroups,
  encodeSyncGroup,
} from '../protocol/messages/groups.js';
import { decodeOffsetCommit, decodeOffsetFetch, encodeOffsetCommit, encodeOffsetFetch } from '../protocol/messages/offsets.js';
import type { Handler } from './context.js';

export const handleFindCoordinator: Handler = ({ state, header }, r) => {
  decodeFindCoordinator(r, header.apiVersion);
  const c = state.config;
  return encodeFindCoordinator({ errorCode: ErrorCode.NONE, nodeId: c.nodeId, host: c.advertisedHost, port: c.advertisedPort }, header.apiVersion);
};

export const handleJoinGroup: Handler = async ({ state, header, clientHost }, r) => {
  const req = decodeJoinGroup(r, header.apiVersion);
  const res = await state.groups.join(req, header.clientId ?? '', clientHost);
  return encodeJoinGroup(res, header.apiVersion);
};

export const handleSyncGroup: Handler = async ({ state, header }, r) => {
  const res = await state.groups.sync(decodeSyncGroup(r));
  return encodeSyncGroup(res, header.apiVersion);
};

export const handleHeartbeat: Handler = ({ state, header }, r) => {
  const req = decodeHeartbeat(r);
  return encodeErrorOnly(state.groups.heartbeat(req.groupId, req.memberId, req.generationId), header.apiVersion);
};

export const handleLeaveGroup: Handler = ({ state, header }, r) => {
  const req = decodeLeaveGroup(r);
  return encodeErrorOnly(state.groups.leave(req.groupId, req.memberId), header.apiVersion);
};

/**
 * Commits are written to the OS at once (they survive kill -9) and fsynced with the next flush
 * round (the next acks=-1 produce, or the periodic flush within a second): like Kafka, which
 * does not fsync offset commits either. A commit lost to an OS crash means re-delivery, not loss.
 */
export const handleOffsetCommit: Handler = ({ state, header }, r) => {
  const req = decodeOffsetCommit(r, header.apiVersion);
  const res = state.groups.commitOffsets(req);
  state.flusher.markDirty(state.offsets);
  return encodeOffsetCommit(res, header.apiVersion);
};

export const handleOffsetFetch: Handler = ({ state, header }, r) => {
  const req = decodeOffsetFetch(r);
  return encodeOffsetFetch(state.groups.fetchOffsets(req), ErrorCode.NONE, header.apiVersion);
};

export const handleDescribeGroups: Handler = ({ state, header }, r) => {
  const req = decodeDescribeGroups(r);
  return encodeDescribeGroups(req.groups.map((g) => state.groups.describe(g)), header.apiVersion);
};

export const handleListGroups: Handler = ({ state, header }) => encodeListGroups(state.groups.list(), header.apiVersion);
