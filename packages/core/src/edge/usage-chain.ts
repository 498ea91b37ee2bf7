import { createHash } from 'node:crypto';
import { EDGE_USAGE_FORMAT, type EdgeUsageRecord } from '@kura/schema';

// The usage log's hash chain (docs/edge.md, "The usage log"), one piece for the device that writes
// it (@kura/edge) and the deployment that accepts reports of it: both must hash the same bytes.

/** Where a chain stands: its last record (seq 0 and the genesis hash before any). */
export interface ChainHead {
  seq: number;
  hash: string;
  /** The end of the last record's window; null before any. */
  to: string | null;
}

export type UsageChainCode =
  | 'EDGE_USAGE_WRONG_EXPORT'
  | 'EDGE_USAGE_TAMPERED'
  | 'EDGE_USAGE_REORDERED'
  | 'EDGE_USAGE_GAP'
  | 'EDGE_USAGE_CHAIN_BROKEN'
  | 'EDGE_USAGE_TIME_INVALID'
  | 'EDGE_USAGE_REWRITTEN';

/** A record that does not continue the chain: which one (its index and seq), which field, why. */
export class UsageChainError extends Error {
  constructor(
    readonly code: UsageChainCode,
    message: string,
    readonly index: number,
    readonly field: string,
  ) {
    super(message);
    this.name = 'UsageChainError';
  }
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The `prev` of an export's first record. */
export const genesisHash = (exportId: string) => sha256(`${EDGE_USAGE_FORMAT}\n${exportId}`);

/** The head of an export's chain before any record. */
export const genesisHead = (exportId: string): ChainHead => ({ seq: 0, hash: genesisHash(exportId), to: null });

/** A record's hash: the sha256 of its other fields, one per line, in this order. */
export const recordHash = (record: Omit<EdgeUsageRecord, 'hash'>) =>
  sha256([EDGE_USAGE_FORMAT, record.exportId, record.seq, record.from, record.to, record.calls, record.prev].join('\n'));

/** Seals a record: fills in its hash. */
export const sealRecord = (record: Omit<EdgeUsageRecord, 'hash'>): EdgeUsageRecord => ({ ...record, hash: recordHash(record) });

/** Refuses a batch whose seqs do not increase (records sent out of order). */
export function checkOrder(records: readonly EdgeUsageRecord[], offset = 0): void {
  records.forEach((record, index) => {
    const before = records[index - 1];
    if (before && record.seq <= before.seq)
      throw new UsageChainError(
        'EDGE_USAGE_REORDERED',
        `record ${record.seq} comes after record ${before.seq}: records go in order`,
        offset + index,
        'seq',
      );
  });
}

/**
 * Checks that `records` continue the chain at `head`, each after the one before: the right export, a
 * hash that matches its fields, the next seq, `prev` the hash before it, a window that starts no
 * earlier than the last one ended, ends no earlier than it starts, and not after `now` (with `skewMs`).
 * Returns the new head. `offset` is added to indexes in errors (records before it were sorted out).
 */
export function checkContinuation(
  exportId: string,
  head: ChainHead,
  records: readonly EdgeUsageRecord[],
  options: { now?: Date; skewMs?: number; offset?: number } = {},
): ChainHead {
  const offset = options.offset ?? 0;
  const latest = options.now ? options.now.getTime() + (options.skewMs ?? 0) : Infinity;
  let current = head;
  records.forEach((record, position) => {
    const index = offset + position;
    const fail = (code: UsageChainCode, field: string, message: string): never => {
      throw new UsageChainError(code, `record ${record.seq}: ${message}`, index, field);
    };
    if (record.exportId !== exportId) fail('EDGE_USAGE_WRONG_EXPORT', 'exportId', `belongs to export ${record.exportId}, not ${exportId}`);
    if (recordHash(record) !== record.hash) fail('EDGE_USAGE_TAMPERED', 'hash', 'its hash does not match its fields (it was changed)');
    if (record.seq !== current.seq + 1)
      fail('EDGE_USAGE_GAP', 'seq', `expected record ${current.seq + 1} next (records ${current.seq + 1}–${record.seq - 1} are missing)`);
    if (record.prev !== current.hash)
      fail(
        'EDGE_USAGE_CHAIN_BROKEN',
        'prev',
        `its prev is not the hash of record ${current.seq} (a record before it was changed or replaced)`,
      );
    const from = Date.parse(record.from);
    const to = Date.parse(record.to);
    if (to < from) fail('EDGE_USAGE_TIME_INVALID', 'to', `its window ends (${record.to}) before it starts (${record.from})`);
    if (current.to !== null && from < Date.parse(current.to))
      fail(
        'EDGE_USAGE_TIME_INVALID',
        'from',
        `its window starts (${record.from}) before the last one ended (${current.to}): the clock went back`,
      );
    if (to > latest) fail('EDGE_USAGE_TIME_INVALID', 'to', `its window ends (${record.to}) in the future`);
    current = { seq: record.seq, hash: record.hash, to: record.to };
  });
  return current;
}
