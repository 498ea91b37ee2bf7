import { Inject, Injectable } from '@nestjs/common';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { DatabaseHealth } from '../database/database-health.js';
import { JOB_QUEUE, type JobQueue } from '../jobs/job-queue.js';
import type { JailLevelChoice } from '@kura/jail';
import { JAIL_LEVEL } from '../database/database.tokens.js';

export type CheckName = 'database' | 'queue' | 'blobs';
export interface HealthReport {
  /** `degraded`: the database is down and this process is restarting it (embedded mode); `error`: a dependency fails. */
  status: 'ok' | 'degraded' | 'error';
  /** "ok", or what went wrong. */
  checks: Record<CheckName, string>;
  /** How untrusted work (upload parsers, developers' code) is confined here, and why. */
  sandbox: JailLevelChoice;
}

const CHECK_TIMEOUT_MS = 2000;

/** Whether each dependency answers now; /health reports it. */
@Injectable()
export class HealthService {
  constructor(
    private readonly database: DatabaseHealth,
    @Inject(JOB_QUEUE) private readonly queue: JobQueue,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(JAIL_LEVEL) private readonly sandbox: JailLevelChoice,
  ) {}

  async check(): Promise<HealthReport> {
    const [database, queue, blobs] = await Promise.all([
      probe(() => this.database.ping()),
      probe(() => this.queue.ping()),
      probe(() => this.blobs.ping()),
    ]);
    const checks = { database, queue, blobs };
    const failing = Object.entries(checks).filter(([, result]) => result !== 'ok');
    const status =
      failing.length === 0 ? 'ok' : failing.every(([name]) => name === 'database') && this.database.recovering() ? 'degraded' : 'error';
    return { status, checks, sandbox: this.sandbox };
  }
}

async function probe(check: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return 'ok';
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
}
