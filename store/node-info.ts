/**
 * Info commands a ferry node answers beyond Aerospike's own (the wire server's info.ts): ferry's
 * operational commands, used by the `ferry` CLI. Each returns a single value string.
 *
 * - `ferry-node` -> `node-id=<id>;namespaces=<a,b>;uptime=<s>`
 */
import type { InfoHandler } from './api.js';
import type { FerryNode } from './node.js';

export function nodeInfoCommands(node: FerryNode): Record<string, InfoHandler> {
  return {
    'ferry-node': () => `node-id=${node.nodeId};namespaces=${node.namespaceNames().join(',')};uptime=${node.stats().uptime}`,
  };
}
