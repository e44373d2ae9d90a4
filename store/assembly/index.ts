/** Node assembly: a running node (store, cluster, service port, extensions) and its lifecycle. */
export { NodeStartError, NodeStartStep, RunningNode, type NodeLog, type NodeLogLevel, type NodeStartOptions, type NodeStartStepId } from './running-node.js';
