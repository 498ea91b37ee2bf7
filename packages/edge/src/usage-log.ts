import { open, readFile, rm, truncate, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { checkContinuation, genesisHead, sealRecord, UsageChainError, type ChainHead } from '@kura/core/edge-runtime';
import { edgeUsageRecordSchema, type EdgeUsageRecord } from '@kura/schema';
import { EdgeRunError } from './edge.errors.js';

/**
 * A device's usage log (docs/edge.md, "The usage log"): one file per export, one JSON record per
 * line, each chained to the one before by hash. Appended and synced to disk record by record, so a
 * killed process loses at most the window it had open; a line cut short by a crash is dropped when
 * the log is next opened for writing. One writer at a time (a lock file naming its pid).
 */
export class UsageLog {
  private constructor(
    readonly exportId: string,
    readonly path: string,
    private readonly lockPath: string | undefined,
    private current: ChainHead,
    private recorded: number,
    private readonly all: EdgeUsageRecord[],
  ) {}

  /** Opens the log of `exportId` under `stateDir` for writing: takes its lock, checks the whole chain. */
  static async open(stateDir: string, exportId: string): Promise<UsageLog> {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const path = logPath(stateDir, exportId);
    const lockPath = `${path}.lock`;
    await takeLock(lockPath);
    try {
      const { records, tornBytes } = await readRecords(path, exportId);
      if (tornBytes !== undefined) await truncate(path, tornBytes);
      return new UsageLog(exportId, path, lockPath, headOf(exportId, records), sum(records), records);
    } catch (error) {
      await rm(lockPath, { force: true });
      throw error;
    }
  }

  /** Reads the log without writing to it (a report while the runner serves): an unfinished last line is left out. */
  static async read(stateDir: string, exportId: string): Promise<UsageLog> {
    const path = logPath(stateDir, exportId);
    const { records } = await readRecords(path, exportId);
    return new UsageLog(exportId, path, undefined, headOf(exportId, records), sum(records), records);
  }

  get head(): ChainHead {
    return this.current;
  }

  /** Calls in every record. */
  get calls(): number {
    return this.recorded;
  }

  /** Records after `seq`, in order. */
  after(seq: number): EdgeUsageRecord[] {
    return this.all.filter((record) => record.seq > seq);
  }

  /** Appends a window's calls as the next record and syncs it to disk before returning. */
  async append(window: { from: Date; to: Date; calls: number }): Promise<EdgeUsageRecord> {
    if (!this.lockPath) throw new Error('the usage log was opened for reading');
    const record = sealRecord({
      exportId: this.exportId,
      seq: this.current.seq + 1,
      from: window.from.toISOString(),
      to: window.to.toISOString(),
      calls: window.calls,
      prev: this.current.hash,
    });
    const handle = await open(this.path, 'a', 0o600);
    try {
      await handle.write(`${JSON.stringify(record)}\n`);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    this.current = { seq: record.seq, hash: record.hash, to: record.to };
    this.recorded += record.calls;
    this.all.push(record);
    return record;
  }

  async close(): Promise<void> {
    if (this.lockPath) await rm(this.lockPath, { force: true });
  }
}

const logPath = (stateDir: string, exportId: string) => join(stateDir, `${exportId}.usage.log`);
const sum = (records: readonly EdgeUsageRecord[]) => records.reduce((total, record) => total + record.calls, 0);

function headOf(exportId: string, records: readonly EdgeUsageRecord[]): ChainHead {
  try {
    return checkContinuation(exportId, genesisHead(exportId), records);
  } catch (error) {
    if (error instanceof UsageChainError)
      throw new EdgeRunError(error.code, `the usage log is not intact at line ${error.index + 1}: ${error.message}`, {
        line: error.index + 1,
        field: error.field,
      });
    throw error;
  }
}

/** The log's records; `tornBytes` is where an unfinished last line starts (a crash mid-append), if there is one. */
async function readRecords(path: string, exportId: string): Promise<{ records: EdgeUsageRecord[]; tornBytes?: number }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { records: [] };
    throw error;
  }
  const lines = text.split('\n');
  const last = lines.pop()!;
  const tornBytes = last === '' ? undefined : Buffer.byteLength(text) - Buffer.byteLength(last);
  const records = lines.map((line, index) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new EdgeRunError('EDGE_LOG_INVALID', `line ${index + 1} of the usage log of ${exportId} is not JSON`, { line: index + 1 });
    }
    const parsed = edgeUsageRecordSchema.safeParse(value);
    if (!parsed.success)
      throw new EdgeRunError('EDGE_LOG_INVALID', `line ${index + 1} of the usage log of ${exportId} is not a usage record`, {
        line: index + 1,
        field: parsed.error.issues[0]?.path.join('.') ?? '',
      });
    return parsed.data;
  });
  return { records, ...(tornBytes !== undefined ? { tornBytes } : {}) };
}

/** Takes the lock file, or refuses while a live process holds it; a dead holder's lock is taken over. */
async function takeLock(lockPath: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      await writeFile(lockPath, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder))
        throw new EdgeRunError('EDGE_LOG_LOCKED', `process ${holder} is using this export's usage log (${lockPath})`, { pid: holder });
      await rm(lockPath, { force: true });
    }
  }
  throw new EdgeRunError('EDGE_LOG_LOCKED', `could not take the usage log's lock ${lockPath}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
