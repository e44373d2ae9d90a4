/**
 * The one table of API keys and versions the broker advertises in ApiVersions and accepts.
 * MinVersion is 0 everywhere (librdkafka enables features by range overlap) and every MaxVersion
 * stays below the first flexible version, so every request uses header v1 and every response
 * header v0. Produce below 3 and Fetch below 4 are listed only for librdkafka's feature
 * detection; legacy (magic 0/1) message sets are refused.
 */
export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  InitProducerId: 22,
  DescribeConfigs: 32,
} as const;
export type ApiKeyId = (typeof ApiKey)[keyof typeof ApiKey];

export interface VersionRange {
  readonly min: number;
  readonly max: number;
}

/** Advertised and accepted versions per API key. */
export const supportedVersions: ReadonlyMap<number, VersionRange> = new Map<number, VersionRange>([
  [ApiKey.ApiVersions, { min: 0, max: 2 }],
  [ApiKey.Metadata, { min: 0, max: 4 }],
  [ApiKey.Produce, { min: 0, max: 3 }],
  [ApiKey.Fetch, { min: 0, max: 4 }],
  [ApiKey.ListOffsets, { min: 0, max: 2 }],
  [ApiKey.FindCoordinator, { min: 0, max: 2 }],
  [ApiKey.JoinGroup, { min: 0, max: 3 }],
  [ApiKey.SyncGroup, { min: 0, max: 2 }],
  [ApiKey.Heartbeat, { min: 0, max: 2 }],
  [ApiKey.LeaveGroup, { min: 0, max: 1 }],
  [ApiKey.OffsetCommit, { min: 0, max: 2 }],
  [ApiKey.OffsetFetch, { min: 0, max: 3 }],
  [ApiKey.CreateTopics, { min: 0, max: 3 }],
  [ApiKey.DeleteTopics, { min: 0, max: 1 }],
  [ApiKey.DescribeGroups, { min: 0, max: 2 }],
  [ApiKey.ListGroups, { min: 0, max: 2 }],
  [ApiKey.InitProducerId, { min: 0, max: 1 }],
  [ApiKey.DescribeConfigs, { min: 0, max: 1 }],
]);

/** First flexible (KIP-482) version per key: such requests carry header v2 (a tag buffer). */
export const firstFlexibleVersion: ReadonlyMap<number, number> = new Map([
  [ApiKey.ApiVersions, 3], [ApiKey.Metadata, 9], [ApiKey.Produce, 9], [ApiKey.Fetch, 12],
  [ApiKey.ListOffsets, 6], [ApiKey.FindCoordinator, 3], [ApiKey.JoinGroup, 6], [ApiKey.Heartbeat, 4],
  [ApiKey.LeaveGroup, 4], [ApiKey.SyncGroup, 4], [ApiKey.OffsetCommit, 8], [ApiKey.OffsetFetch, 6],
  [ApiKey.CreateTopics, 5], [ApiKey.DeleteTopics, 4], [ApiKey.DescribeGroups, 5], [ApiKey.ListGroups, 3],
  [ApiKey.InitProducerId, 2], [ApiKey.DescribeConfigs, 4],
]);

export function isSupported(apiKey: number, version: number): boolean {
  const r = supportedVersions.get(apiKey);
  return r !== undefined && version >= r.min && version <= r.max;
}

export function isFlexible(apiKey: number, version: number): boolean {
  const first = firstFlexibleVersion.get(apiKey);
  return first !== undefined && version >= first;
}
