/** The cluster's transport is the shared one (store/transport/); re-exported for store/cluster. */
export * from '../transport/index.js';
