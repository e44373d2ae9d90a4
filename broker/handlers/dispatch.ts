/** API key → handler. The versions accepted per key are in protocol/versions.ts. */
import { encodeApiVersions } from '../protocol/messages/apiVersions.js';
import { ApiKey } from '../protocol/versions.js';
import { handleCreateTopics, handleDeleteTopics, handleDescribeConfigs, handleInitProducerId } from './admin.js';
import type { Handler } from './context.js';
import { handleFetch, handleListOffsets, handleMetadata, handleProduce } from './data.js';
import {
  handleDescribeGroups,
  handleFindCoordinator,
  handleHeartbeat,
  handleJoinGroup,
  handleLeaveGroup,
  handleListGroups,
  handleOffsetCommit,
  handleOffsetFetch,
  handleSyncGroup,
} from './groups.js';

export const handlers: ReadonlyMap<number, Handler> = new Map<number, Handler>([
  [ApiKey.ApiVersions, ({ header }) => encodeApiVersions(header.apiVersion)],
  [ApiKey.Metadata, handleMetadata],
  [ApiKey.Produce, handleProduce],
  [ApiKey.Fetch, handleFetch],
  [ApiKey.ListOffsets, handleListOffsets],
  [ApiKey.FindCoordinator, handleFindCoordinator],
  [ApiKey.JoinGroup, handleJoinGroup],
  [ApiKey.SyncGroup, handleSyncGroup],
  [ApiKey.Heartbeat, handleHeartbeat],
  [ApiKey.LeaveGroup, handleLeaveGroup],
  [ApiKey.OffsetCommit, handleOffsetCommit],
  [ApiKey.OffsetFetch, handleOffsetFetch],
  [ApiKey.CreateTopics, handleCreateTopics],
  [ApiKey.DeleteTopics, handleDeleteTopics],
  [ApiKey.DescribeGroups, handleDescribeGroups],
  [ApiKey.ListGroups, handleListGroups],
  [ApiKey.InitProducerId, handleInitProducerId],
  [ApiKey.DescribeConfigs, handleDescribeConfigs],
]);

/** Requests whose handling may overlap with the next request on the same connection (responses still go out in order). */
export const pipelinedApis: ReadonlySet<number> = new Set([ApiKey.Produce]);
