/** Public entry points of the embedded broker. */
export { startBroker, type BrokerHandle, type BrokerOptions } from './server.js';
export { brokerMetrics, type BrokerMetricSample } from './metrics.js';
export { supportedVersions, ApiKey } from './protocol/versions.js';
