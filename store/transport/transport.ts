/**
 * Node-to-node and client-to-node messaging: framed messages over connections. Real: TCP
 * (tcp.ts). Simulated: sim/network.ts (delay, loss, duplication, reordering, partitions).
 * Deliberately small so a fake takes a few lines.
 *
 * Semantics both implementations keep: frames arrive whole and, on one connection, in order
 * unless the network is told to reorder; a connection ends once (onClose), for any reason,
 * including a failed connect; sends on a closed connection are dropped silently (the peer's
 * protocol notices by timeouts, as with TCP).
 */

/** Largest frame: a proxied AS_MSG (128 MiB body at most) plus its envelope. */
export const FABRIC_FRAME_BYTES_MAX = 128 * 1024 * 1024 + 64;

export interface Endpoint {
  host: string;
  port: number;
}

export interface FabricConnection {
  /** Remote address as seen by the socket (for logs). */
  readonly remote: string;
  send(frame: Buffer): void;
  onFrame(cb: (frame: Buffer) => void): void;
  /** Called once, when the connection ends for any reason (including a failed connect). */
  onClose(cb: () => void): void;
  close(): void;
  readonly closed: boolean;
  /**
   * True once the connect was actively refused: the endpoint's host answered that nothing
   * listens there (TCP RST, ECONNREFUSED), so the process behind it is not running. Not a
   * timeout or an unreachable network (a partition is told apart from a dead process this way).
   * Optional: a transport that cannot tell leaves it undefined and peers are timed out instead.
   */
  readonly refused?: boolean;
}

export interface FabricListener {
  readonly port: number;
  close(): Promise<void>;
}

export interface Transport {
  listen(endpoint: Endpoint, onConnection: (c: FabricConnection) => void): Promise<FabricListener>;
  /** Starts connecting; frames sent before the connection is up are queued. */
  connect(endpoint: Endpoint): FabricConnection;
}
