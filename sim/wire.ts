/**
 * The simulator's stand-in for a node's TCP service port: the real CommandHandler (partition
 * checks, proxying, the transaction layer) without a socket. The node assembly starts it through
 * its `startWire` seam; the simulated client hands it complete AS_MSG frames and gets complete
 * response frames back, as the official client would over TCP. A crashed node's service is
 * simply never called again (the client sees "connection refused" from the world's bookkeeping).
 */
import type { StoreNode } from '../store/api.js';
import { ResultCode } from '../store/types.js';
import { CommandHandler } from '../store/wire/handler.js';
import { decodeMsg, encodeHeaderFrame } from '../store/wire/message.js';
import { PROTO_HEADER_BYTES, ProtoType } from '../store/wire/proto.js';
import { singleNodeView } from '../store/wire/info.js';
import type { WireServer, WireServerOptions } from '../store/wire/server.js';
import { WireError } from '../store/wire/errors.js';

export interface SimService extends WireServer {
  /** Runs one single-record AS_MSG frame as a client request; resolves with the response frame. */
  request(frame: Buffer): Promise<Buffer>;
}

function run(handler: CommandHandler, frame: Buffer, fromProxy: boolean): Promise<Buffer> {
  let msg;
  try {
    if (frame.length < PROTO_HEADER_BYTES || frame[1] !== ProtoType.AS_MSG) throw new WireError('BAD_TYPE', 'frame is not an AS_MSG');
    msg = decodeMsg(frame.subarray(PROTO_HEADER_BYTES));
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    return Promise.resolve(encodeHeaderFrame({ resultCode: ResultCode.PARAMETER }));
  }
  return handler.single(msg, fromProxy);
}

/** A `startWire` for RunningNode.start; `started` receives the service of each node it starts. */
export function simWire(started: (s: SimService) => void): (node: StoreNode, opts: WireServerOptions) => Promise<WireServer> {
  return (node, opts) => {
    const handler = new CommandHandler(node, opts.view ?? singleNodeView(opts.clusterName), opts.log, opts.clock, opts.timers, opts.proxy);
    const s: SimService = {
      host: opts.advertiseHost ?? opts.host ?? 'sim',
      port: opts.port,
      stats: () => ({ ...handler.counters }),
      handleProxied: (frame) => run(handler, frame, true),
      request: (frame) => run(handler, frame, false),
      close: () => Promise.resolve(),
    };
    started(s);
    return Promise.resolve(s);
  };
}
