import type { UsageChainCode } from '@kura/core/edge-runtime';

/** Why the edge runner refused (docs/edge.md, "Running a package"): a code, a message, and where. */
export type EdgeRunCode =
  | 'EDGE_DEVICE_MISMATCH'
  | 'EDGE_LICENSE_EXPIRED'
  | 'EDGE_QUOTA_EXCEEDED'
  | 'EDGE_CLOCK_BACKWARDS'
  | 'EDGE_LOG_LOCKED'
  | 'EDGE_LOG_INVALID'
  | 'EDGE_PACKAGE_INVALID'
  | 'PAYLOAD_TOO_LARGE'
  // The chain's own codes, when the device's log does not check out (usage-chain.ts).
  | UsageChainCode;

export class EdgeRunError extends Error {
  constructor(
    readonly code: EdgeRunCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'EdgeRunError';
  }
}
