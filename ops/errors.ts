/**
 * The ops error registry: the codes the `ferry` commands print with a failure (OpsError,
 * VerifyError, DemoError, the process and port helpers), documented in docs/errors.md.
 */
import type { AllRegistered, ErrorRegistry } from '../store/index.js';
import type { DemoErrorCode } from './demo.js';
import type { FerryProcessError } from './ferry-process.js';
import type { FreePortError } from './free-port.js';
import type { OpsErrorCode } from './util.js';
import type { VerifyErrorCode } from './verify.js';

export const OpsErrors = {
  USAGE: { meaning: 'The command line is invalid (unknown flag, bad value); the message says which.', retriable: false },
  UNREACHABLE: { meaning: 'A node, receiver or broker did not answer at the address given.', retriable: true },
  CONNECTION: { meaning: 'A site could not be reached or stopped answering during a verify.', retriable: true },
  PROTOCOL: { meaning: 'A peer answered something the command cannot read (wrong service on that port, or an error code).', retriable: false },
  REFUSED: { meaning: 'The peer refused the request (no shipper on that node, wrong state).', retriable: false },
  GROUP_ACTIVE: { meaning: 'A replay or offset reset needs the receiver group stopped, and it is running.', retriable: true },
  TIMEOUT: { meaning: 'The operation did not finish within its time limit.', retriable: true },
  INTERRUPTED: { meaning: 'The command was interrupted (SIGINT or SIGTERM) before it finished.', retriable: true },
  NAMESPACE_NOT_FOUND: { meaning: 'A site has no namespace of the name given.', retriable: false },
  UNAVAILABLE: { meaning: 'A site could not serve the partitions asked for (a cluster changing, nodes missing).', retriable: true },
  ABORTED: { meaning: 'The verify was stopped before it compared every partition.', retriable: true },
  START: { meaning: 'A demo process (node, broker, receiver) failed to start; its output is shown.', retriable: false },
  FERRY_PROCESS: { meaning: 'A ferry child process exited or failed before it was ready.', retriable: false },
  FREE_PORT: { meaning: 'No free local port was found to bind.', retriable: true },
  ERROR: { meaning: 'An unexpected failure; the message says what.', retriable: false },
} as const satisfies ErrorRegistry;

true satisfies AllRegistered<OpsErrorCode | VerifyErrorCode | DemoErrorCode | FerryProcessError['code'] | FreePortError['code'], typeof OpsErrors>;
