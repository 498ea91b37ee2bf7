import pg from 'pg';

/**
 * Holds a Postgres advisory lock on one dataset for the duration of `work`: ingests of the same
 * dataset run one after another, so episode indices and version numbers are contiguous. The lock
 * lives in a dedicated connection; if the process dies, Postgres releases it with the connection.
 */
export async function withDatasetLock<T>(databaseUrl: string, datasetId: string, work: () => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  // A connection lost meanwhile (Postgres restarted) must not crash the process: pg emits it as an
  // 'error' event. The lock goes with it, which is safe: publishing checks the version it started
  // from, so a second ingest of the dataset cannot publish over this one.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock(hashtextextended('kura.dataset:' || $1, 0))", [datasetId]);
    return await work();
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtextextended('kura.dataset:' || $1, 0))", [datasetId]).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
