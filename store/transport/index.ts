/** Public surface of the transport seam (see transport.ts). */
export { FABRIC_FRAME_BYTES_MAX, type Endpoint, type FabricConnection, type FabricListener, type Transport } from './transport.js';
export { CONNECT_TIMEOUT_MS, tcpTransport } from './tcp.js';
