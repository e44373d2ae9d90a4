/**
 * The Aerospike-protocol TCP server of a store node. Per connection: frames are parsed
 * incrementally and handled strictly in order, one at a time. Info (type 1), admin (type 2,
 * answered "security not enabled"), AS_MSG (type 3) and compressed AS_MSG (type 4) may share a
 * socket. A framing error closes only that connection; a malformed AS_MSG gets PARAMETER.
 */
import net from 'node:net';
import type { InfoHandler, StoreNode } from '../api.js';
import { ResultCode } from '../types.js';
import { WireError } from './errors.js';
import { systemClock, systemTimers, type Clock, type Timers } from '../runtime/index.js';
import { CommandHandler, type CommandProxy, type Sink } from './handler.js';
import { answerInfo, infoCommands, singleNodeView, type ClusterView } from './info.js';
import { encodeInfoResponseFrame, parseInfoRequest } from './info-codec.js';
import { decodeMsg, encodeHeaderFrame } from './message.js';
import { FrameParser, PROTO_BODY_BYTES_MAX, PROTO_HEADER_BYTES, ProtoType, decompressBody, encodeFrame } from './proto.js';

/** Default cap on open client connections. */
export const CONNECTIONS_MAX_DEFAULT = 10_000;
/** Refused connections are logged at most this often (a storm must not flood the log). */
const REFUSED_LOG_INTERVAL_MS = 10_000;
/** Frames queued on one connection before the socket is paused (clients do not pipeline). */
const QUEUED_FRAMES_MAX = 64;
/** Admin header bytes. */
const ADMIN_HEADER_BYTES = 16;
/** Connections idle (no request, nothing running) for between one and two of these are closed. */
export const IDLE_TIMEOUT_MS_DEFAULT = 10 * 60 * 1000;

export interface WireServerOptions {
  host?: string;
  port: number;
  maxConnections?: number;
  extraInfo?: Record<string, InfoHandler>;
  /** Dynamic service-level settings (set-config:context=service). */
  setServiceConfig?: (key: string, value: string) => boolean;
  /** Service-level settings reported by get-config:context=service. */
  serviceConfig?: () => Record<string, string | number | boolean>;
  /** Cluster shape for info answers and partition checks; default: a one-node cluster. */
  view?: ClusterView;
  /** Cluster name of the default one-node view (ignored with `view`); default 'ferry'. */
  clusterName?: string;
  /** Host clients should use for this node (service-clear-std); default: the bound host. */
  advertiseHost?: string;
  idleTimeoutMs?: number;
  /** Largest accepted proto body (default and maximum 128 MiB). */
  bodyBytesMax?: number;
  log?: (msg: string, err?: unknown) => void;
  /** Forwards commands for partitions this node does not master (cluster nodes). */
  proxy?: CommandProxy;
  /** Time source and timers (default: the real ones). */
  clock?: Clock;
  timers?: Timers;
}

export interface WireServer {
  host: string;
  port: number;
  close(): Promise<void>;
  stats(): Record<string, number>;
  /** Runs a command another node forwarded (a complete AS_MSG frame); returns the response frame. */
  handleProxied(frame: Buffer): Promise<Buffer>;
}

export async function startWireServer(node: StoreNode, opts: WireServerOptions): Promise<WireServer> {
  const host = opts.host ?? '127.0.0.1';
  const maxConnections = opts.maxConnections ?? CONNECTIONS_MAX_DEFAULT;
  const bodyBytesMax = Math.min(opts.bodyBytesMax ?? PROTO_BODY_BYTES_MAX, PROTO_BODY_BYTES_MAX);
  const view = opts.view ?? singleNodeView(opts.clusterName);
  const log = opts.log ?? (() => {});
  const clock = opts.clock ?? systemClock;
  const timers = opts.timers ?? systemTimers;
  const handler = new CommandHandler(node, view, log, clock, timers, opts.proxy);
  const sockets = new Set<net.Socket>();
  /** Per connection: activity count at the last idle sweep, and whether a request is running. */
  const activity = new Map<net.Socket, { seen: number; now: number; busy: () => boolean }>();
  const idleTimeoutMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS_DEFAULT;
  // One coarse sweep instead of a per-socket timer refreshed on every read and write: a
  // connection with no bytes in for a whole sweep interval, and nothing running, is closed.
  const sweeper = timers.setInterval(() => {
    for (const [socket, a] of activity) {
      if (a.now === a.seen && !a.busy() && socket.writableLength === 0) socket.destroy();
      a.seen = a.now;
    }
  }, idleTimeoutMs);
  sweeper.unref();
  const counters = {
    connections_opened: 0,
    connections_closed: 0,
    connections_refused: 0,
    protocol_errors: 0,
    info_requests: 0,
    msg_requests: 0,
    admin_requests: 0,
    bad_messages: 0,
    bytes_in: 0,
    bytes_out: 0,
  };
  let boundPort = opts.port;
  let refusedLoggedAt = -Infinity;
  let info: Record<string, InfoHandler> = {};

  const server = net.createServer({ noDelay: true }, (socket) => {
    if (sockets.size >= maxConnections) {
      counters.connections_refused++;
      // Closed at once (as Aerospike does at proto-fd-max); said in the log at most once per
      // REFUSED_LOG_INTERVAL_MS, and counted in statistics as connections_refused.
      socket.destroy();
      const now = clock.nowMs();
      if (now - refusedLoggedAt >= REFUSED_LOG_INTERVAL_MS) {
        log(`connection refused: ${sockets.size} open, at max-connections ${maxConnections} (${counters.connections_refused} refused so far)`);
        refusedLoggedAt = now;
      }
      return;
    }
    sockets.add(socket);
    counters.connections_opened++;
    serveConnection(socket);
  });
  server.on('error', (err) => log('wire server error', err));

  function serveConnection(socket: net.Socket): void {
    socket.setNoDelay(true);
    const parser = new FrameParser(bodyBytesMax);
    const queue: Array<{ type: number; body: Buffer }> = [];
    let busy = false;
    let closed = false;
    const sink: Sink = {
      get closed() {
        return closed;
      },
      write(buf: Buffer): Promise<void> | void {
        if (closed) return;
        counters.bytes_out += buf.length;
        if (socket.write(buf)) return;
        return new Promise<void>((resolve) => {
          const done = (): void => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
      },
    };
    const fatal = (err: unknown): void => {
      counters.protocol_errors++;
      log('closing connection after protocol error', err);
      closed = true;
      socket.destroy();
    };

    const act = { seen: 0, now: 0, busy: () => busy || queue.length > 0 };
    activity.set(socket, act);
    socket.on('data', (chunk: Buffer) => {
      act.now++;
      counters.bytes_in += chunk.length;
      let frames;
      try {
        frames = parser.push(chunk);
      } catch (err) {
        fatal(err);
        return;
      }
      if (frames.length === 0) return;
      queue.push(...frames);
      if (queue.length >= QUEUED_FRAMES_MAX) socket.pause();
      if (!busy) void drain();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      sockets.delete(socket);
      activity.delete(socket);
      counters.connections_closed++;
    });

    async function drain(): Promise<void> {
      busy = true;
      try {
        while (queue.length > 0 && !closed) {
          const frame = queue.shift()!;
          if (queue.length < QUEUED_FRAMES_MAX / 2 && socket.isPaused()) socket.resume();
          await handleFrame(frame.type, frame.body);
        }
      } catch (err) {
        fatal(err);
      } finally {
        busy = false;
      }
    }

    async function handleFrame(type: number, body: Buffer): Promise<void> {
      switch (type) {
        case ProtoType.INFO: {
          counters.info_requests++;
          const answers = await answerInfo(info, parseInfoRequest(body));
          await sink.write(encodeInfoResponseFrame(answers));
          return;
        }
        case ProtoType.ADMIN: {
          counters.admin_requests++;
          const reply = Buffer.alloc(ADMIN_HEADER_BYTES);
          reply[1] = ResultCode.SECURITY_NOT_ENABLED;
          await sink.write(encodeFrame(ProtoType.ADMIN, reply));
          return;
        }
        case ProtoType.AS_MSG:
        case ProtoType.AS_MSG_COMPRESSED: {
          counters.msg_requests++;
          let msgBody = body;
          if (type === ProtoType.AS_MSG_COMPRESSED) msgBody = decompressBody(body, bodyBytesMax); // throws WireError: fatal
          let msg;
          try {
            msg = decodeMsg(msgBody);
          } catch (err) {
            if (!(err instanceof WireError)) throw err;
            counters.bad_messages++;
            await sink.write(encodeHeaderFrame({ resultCode: ResultCode.PARAMETER }));
            return;
          }
          await handler.handle(msg, sink);
          return;
        }
        default:
          throw new WireError('BAD_TYPE', `proto type ${type}`);
      }
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr && typeof addr === 'object') boundPort = addr.port;
  info = infoCommands({
    node,
    view,
    host: opts.advertiseHost ?? host,
    port: boundPort,
    clock,
    ...(opts.setServiceConfig ? { setServiceConfig: opts.setServiceConfig } : {}),
    ...(opts.serviceConfig ? { serviceConfig: opts.serviceConfig } : {}),
    extra: {
      // ferry's own: this server's counters (commands served, refused as not owner, proxied).
      'ferry-wire': () =>
        Object.entries({ ...counters, connections_open: sockets.size, ...handler.counters })
          .map(([k, v]) => `${k}=${v}`)
          .join(';'),
      ...(opts.extraInfo ?? {}),
    },
  });

  return {
    host,
    port: boundPort,
    stats: () => ({ ...counters, connections_open: sockets.size, ...handler.counters }),
    handleProxied: async (frame) => {
      let msg;
      try {
        if (frame.length < PROTO_HEADER_BYTES || frame[1] !== ProtoType.AS_MSG) throw new WireError('BAD_TYPE', 'proxied frame is not an AS_MSG');
        msg = decodeMsg(frame.subarray(PROTO_HEADER_BYTES));
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        counters.bad_messages++;
        return encodeHeaderFrame({ resultCode: ResultCode.PARAMETER });
      }
      // Batches and scans are never proxied: clients split them by their map, and a node
      // answers partitions it does not own with UNAVAILABLE, which the clients retry.
      return handler.single(msg, true);
    },
    close: () =>
      new Promise<void>((resolve) => {
        timers.clearInterval(sweeper);
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
