/**
 * Classic consumer-group coordinator: membership (join, sync, heartbeat, leave), rebalances,
 * session expiry, and committed offsets (kept in an OffsetStore). Parked JoinGroup/SyncGroup
 * requests are promises; only the connection that sent them waits.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../protocol/errors.js';
import type { DescribedGroup, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest } from '../protocol/messages/groups.js';
import type { OffsetCommitRequest, OffsetFetchRequest, OffsetFetchTopic, TopicPartitionErrors } from '../protocol/messages/offsets.js';
import type { OffsetStore } from './offsetStore.js';

export const sessionTimeoutMsMax = 1_800_000;
export const expiryCheckIntervalMs = 250;

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

interface Member {
  memberId: string;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: { name: string; metadata: Buffer }[];
  assignment: Buffer;
  lastSeenMs: number;
  joinWaiter?: (res: JoinGroupResponse) => void;
  syncWaiter?: (res: { errorCode: number; assignment: Buffer }) => void;
}

interface Group {
  id: string;
  state: GroupState;
  generation: number;
  protocolType: string;
  protocolName: string;
  leader: string;
  members: Map<string, Member>;
  rebalanceTimer?: NodeJS.Timeout;
}

const empty = Buffer.alloc(0);

export interface CoordinatorOptions {
  sessionTimeoutMsMin: number;
  /** Existing partitions of a topic, for OffsetFetch with null topics and for lag. */
  now?: () => number;
}

export class GroupCoordinator {
  readonly groups = new Map<string, Group>();
  private readonly expiryTimer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(readonly offsets: OffsetStore, private readonly opts: CoordinatorOptions) {
    this.now = opts.now ?? Date.now;
    this.expiryTimer = setInterval(() => this.expireMembers(), expiryCheckIntervalMs);
    this.expiryTimer.unref();
  }

  close(): void {
    clearInterval(this.expiryTimer);
    for (const g of this.groups.values()) if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
  }

  private group(id: string): Group {
    let g = this.groups.get(id);
    if (!g) {
      g = { id, state: 'Empty', generation: 0, protocolType: '', protocolName: '', leader: '', members: new Map() };
      this.groups.set(id, g);
    }
    return g;
  }

  join(req: JoinGroupRequest, clientId: string, clientHost: string): Promise<JoinGroupResponse> {
    const fail = (errorCode: number, memberId = req.memberId): Promise<JoinGroupResponse> =>
      Promise.resolve({ errorCode, generationId: -1, protocolName: '', leader: '', memberId, members: [] });
    if (req.groupId === '') return fail(ErrorCode.INVALID_GROUP_ID);
    if (req.sessionTimeoutMs < this.opts.sessionTimeoutMsMin || req.sessionTimeoutMs > sessionTimeoutMsMax) {
      return fail(ErrorCode.INVALID_SESSION_TIMEOUT);
    }
    const g = this.group(req.groupId);
    const others = [...g.members.values()].filter((m) => m.memberId !== req.memberId);
    if (req.protocols.length === 0 || req.protocolType === '') return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    if (others.length > 0) {
      if (req.protocolType !== g.protocolType) return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
      const names = new Set(req.protocols.map((p) => p.name));
      if (others.some((m) => !m.protocols.some((p) => names.has(p.name)))) return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    }
    let member: Member | undefined;
    if (req.memberId === '') {
      member = {
        memberId: `${clientId || 'member'}-${randomUUID()}`,
        clientId,
        clientHost,
        sessionTimeoutMs: req.sessionTimeoutMs,
        rebalanceTimeoutMs: req.rebalanceTimeoutMs,
        protocols: req.protocols,
        assignment: empty,
        lastSeenMs: this.now(),
      };
      g.members.set(member.memberId, member);
    } else {
      member = g.members.get(req.memberId);
      if (!member) return fail(ErrorCode.UNKNOWN_MEMBER_ID);
      const unchanged =
        member.protocols.length === req.protocols.length &&
        member.protocols.every((p, i) => p.name === req.protocols[i]!.name && p.metadata.equals(req.protocols[i]!.metadata));
      member.sessionTimeoutMs = req.sessionTimeoutMs;
      member.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
      member.protocols = req.protocols;
      member.lastSeenMs = this.now();
      if (g.state === 'Stable' && unchanged && member.memberId !== g.leader) {
        return Promise.resolve(this.joinResponse(g, member));
      }
    }
    g.protocolType = req.protocolType;
    const m = member;
    const parked = new Promise<JoinGroupResponse>((resolve) => {
      m.joinWaiter?.({ errorCode: ErrorCode.UNKNOWN_MEMBER_ID, generationId: -1, protocolName: '', leader: '', memberId: m.memberId, members: [] });
      m.joinWaiter = resolve;
    });
    if (g.state !== 'PreparingRebalance') this.prepareRebalance(g);
    this.maybeCompleteJoin(g);
    return parked;
  }

  private joinResponse(g: Group, m: Member): JoinGroupResponse {
    const isLeader = m.memberId === g.leader;
    return {
      errorCode: ErrorCode.NONE,
      generationId: g.generation,
      protocolName: g.protocolName,
      leader: g.leader,
      memberId: m.memberId,
      members: isLeader
        ? [...g.members.values()].map((x) => ({ memberId: x.memberId, metadata: x.protocols.find((p) => p.name === g.protocolName)?.metadata ?? empty }))
        : [],
    };
  }

  private prepareRebalance(g: Group): void {
    g.state = 'PreparingRebalance';
    for (const m of g.members.values()) {
      if (m.syncWaiter) {
        m.syncWaiter({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, assignment: empty });
        m.syncWaiter = undefined;
      }
    }
    if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
    let timeout = 0;
    for (const m of g.members.values()) timeout = Math.max(timeout, m.rebalanceTimeoutMs);
    g.rebalanceTimer = setTimeout(() => this.completeJoin(g), timeout);
    g.rebalanceTimer.unref();
  }

  private maybeCompleteJoin(g: Group): void {
    if (g.state !== 'PreparingRebalance') return;
    for (const m of g.members.values()) if (!m.joinWaiter) return;
    this.completeJoin(g);
  }

  private completeJoin(g: Group): void {
    if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
    g.rebalanceTimer = undefined;
    if (g.state !== 'PreparingRebalance') return;
    for (const m of [...g.members.values()]) if (!m.joinWaiter) g.members.delete(m.memberId);
    g.generation++;
    if (g.members.size === 0) {
      g.state = 'Empty';
      g.leader = '';
      g.protocolName = '';
      return;
    }
    const members = [...g.members.values()];
    if (!g.members.has(g.leader)) g.leader = members[0]!.memberId;
    g.protocolName = this.chooseProtocol(members, g.members.get(g.leader)!);
    g.state = 'CompletingRebalance';
    const now = this.now();
    for (const m of members) {
      const waiter = m.joinWaiter!;
      m.joinWaiter = undefined;
      m.lastSeenMs = now;
      m.assignment = empty;
      waiter(this.joinResponse(g, m));
    }
  }

  private chooseProtocol(members: Member[], leader: Member): string {
    const common = leader.protocols.map((p) => p.name).filter((n) => members.every((m) => m.protocols.some((p) => p.name === n)));
    const votes = new Map<string, number>();
    for (const m of members) {
      const pick = m.protocols.find((p) => common.includes(p.name));
      if (pick) votes.set(pick.name, (votes.get(pick.name) ?? 0) + 1);
    }
    let best = common[0] ?? '';
    for (const n of common) if ((votes.get(n) ?? 0) > (votes.get(best) ?? 0)) best = n;
    return best;
  }

  sync(req: SyncGroupRequest): Promise<{ errorCode: number; assignment: Buffer }> {
    const fail = (errorCode: number) => Promise.resolve({ errorCode, assignment: empty });
    const g = this.groups.get(req.groupId);
    const m = g?.members.get(req.memberId);
    if (!g || !m) return fail(ErrorCode.UNKNOWN_MEMBER_ID);
    if (req.generationId !== g.generation) return fail(ErrorCode.ILLEGAL_GENERATION);
    m.lastSeenMs = this.now();
    if (g.state === 'PreparingRebalance') return fail(ErrorCode.REBALANCE_IN_PROGRESS);
    if (g.state === 'Stable') return Promise.resolve({ errorCode: ErrorCode.NONE, assignment: m.assignment });
    if (g.state !== 'CompletingRebalance') return fail(ErrorCode.UNKNOWN_MEMBER_ID);
    const parked = new Promise<{ errorCode: number; assignment: Buffer }>((resolve) => {
      m.syncWaiter?.({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, assignment: empty });
      m.syncWaiter = resolve;
    });
    if (m.memberId === g.leader) {
      const given = new Map(req.assignments.map((a) => [a.memberId, a.assignment]));
      g.state = 'Stable';
      const now = this.now();
      for (const x of g.members.values()) {
        x.assignment = given.get(x.memberId) ?? empty;
        x.lastSeenMs = now;
        if (x.syncWaiter) {
          const w = x.syncWaiter;
          x.syncWaiter = undefined;
          w({ errorCode: ErrorCode.NONE, assignment: x.assignment });
        }
      }
    }
    return parked;
  }

  heartbeat(groupId: string, memberId: string, generationId: number): number {
    const g = this.groups.get(groupId);
    const m = g?.members.get(memberId);
    if (!g || !m) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== g.generation) return ErrorCode.ILLEGAL_GENERATION;
    m.lastSeenMs = this.now();
    if (g.state === 'Empty') return ErrorCode.UNKNOWN_MEMBER_ID;
    if (g.state === 'PreparingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS;
    return ErrorCode.NONE;
  }

  leave(groupId: string, memberId: string): number {
    const g = this.groups.get(groupId);
    const m = g?.members.get(memberId);
    if (!g || !m) return ErrorCode.UNKNOWN_MEMBER_ID;
    this.removeMember(g, m);
    return ErrorCode.NONE;
  }

  private removeMember(g: Group, m: Member): void {
    g.members.delete(m.memberId);
    m.joinWaiter?.({ errorCode: ErrorCode.UNKNOWN_MEMBER_ID, generationId: -1, protocolName: '', leader: '', memberId: m.memberId, members: [] });
    m.syncWaiter?.({ errorCode: ErrorCode.UNKNOWN_MEMBER_ID, assignment: empty });
    if (g.members.size === 0) {
      if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
      g.rebalanceTimer = undefined;
      g.state = 'Empty';
      g.generation++;
      g.leader = '';
      g.protocolName = '';
      return;
    }
    if (g.state !== 'PreparingRebalance') this.prepareRebalance(g);
    this.maybeCompleteJoin(g);
  }

  private expireMembers(): void {
    const now = this.now();
    for (const g of this.groups.values()) {
      for (const m of [...g.members.values()]) {
        if (m.joinWaiter || m.syncWaiter) continue;
        if (now - m.lastSeenMs > m.sessionTimeoutMs) this.removeMember(g, m);
      }
    }
  }

  commitOffsets(req: OffsetCommitRequest): TopicPartitionErrors[] {
    const code = this.commitCheck(req);
    if (code === ErrorCode.NONE) {
      const entries = req.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.index, offset: p.offset, metadata: p.metadata })));
      this.offsets.commit(req.groupId, entries);
    }
    return req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ index: p.index, errorCode: code })) }));
  }

  private commitCheck(req: OffsetCommitRequest): number {
    if (req.groupId === '') return ErrorCode.INVALID_GROUP_ID;
    const g = this.groups.get(req.groupId);
    if (!g || g.state === 'Empty') {
      if (req.generationId < 0) return ErrorCode.NONE;
      return ErrorCode.UNKNOWN_MEMBER_ID;
    }
    if (req.generationId < 0 && req.memberId === '') return ErrorCode.UNKNOWN_MEMBER_ID;
    const m = g.members.get(req.memberId);
    if (!m) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (req.generationId !== g.generation) return ErrorCode.ILLEGAL_GENERATION;
    if (g.state === 'CompletingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS;
    m.lastSeenMs = this.now();
    return ErrorCode.NONE;
  }

  fetchOffsets(req: OffsetFetchRequest): OffsetFetchTopic[] {
    const stored = this.offsets.groups.get(req.groupId);
    const topics = req.topics ?? [...(stored ?? new Map<string, Map<number, unknown>>())].map(([name, parts]) => ({ name, partitions: [...parts.keys()] }));
    return topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((index) => {
        const c = this.offsets.get(req.groupId, t.name, index);
        return { index, offset: c?.offset ?? -1, metadata: c?.metadata ?? '', errorCode: ErrorCode.NONE };
      }),
    }));
  }

  describe(groupId: string): DescribedGroup {
    const g = this.groups.get(groupId);
    if (!g) return { errorCode: 0, groupId, state: 'Dead', protocolType: '', protocolData: '', members: [] };
    return {
      errorCode: 0,
      groupId,
      state: g.state,
      protocolType: g.protocolType,
      protocolData: g.protocolName,
      members: [...g.members.values()].map((m) => ({
        memberId: m.memberId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        metadata: m.protocols.find((p) => p.name === g.protocolName)?.metadata ?? empty,
        assignment: m.assignment,
      })),
    };
  }

  /** Groups with members or with committed offsets. */
  list(): { groupId: string; protocolType: string }[] {
    const ids = new Set([...this.groups.keys(), ...this.offsets.groups.keys()]);
    return [...ids].map((id) => ({ groupId: id, protocolType: this.groups.get(id)?.protocolType || 'consumer' }));
  }
}
