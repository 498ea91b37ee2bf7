import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Logger } from '../logging/logger.js';

/** prisma/migrations at the repository root; the same depth from src/ and dist/. */
export const defaultMigrationsDirectory = fileURLToPath(new URL('../../../../prisma/migrations', import.meta.url));

// The advisory lock id `prisma migrate deploy` takes, so Kura's runner and Prisma's exclude each other.
const MIGRATION_LOCK_ID = 72707369;

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/**
 * Applies the SQL migrations in Prisma's folder layout that the database has not seen, in name
 * order, each in its own transaction, and records them in `_prisma_migrations` exactly as
 * `prisma migrate deploy` does — so either tool can take over a database from the other.
 * Safe to run from several processes at once (advisory lock).
 */
export async function applyMigrations(params: { databaseUrl: string; logger: Logger; directory?: string }): Promise<{ applied: string[] }> {
  const directory = params.directory ?? defaultMigrationsDirectory;
  const migrations = await readMigrations(directory);
  const client = new pg.Client({ connectionString: params.databaseUrl });
  client.on('error', () => undefined); // a lost connection fails the query in progress; it must not crash the process
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0
    )`);
    const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL',
    );
    const unfinished = rows.find((row) => row.finished_at === null);
    if (unfinished) {
      throw new MigrationError(
        `Migration ${unfinished.migration_name} failed earlier and was not rolled back; repair the database, then mark it rolled back.`,
      );
    }
    const applied = new Map(rows.map((row) => [row.migration_name, row.checksum]));
    const newlyApplied: string[] = [];
    for (const migration of migrations) {
      const appliedChecksum = applied.get(migration.name);
      if (appliedChecksum !== undefined) {
        if (appliedChecksum !== migration.checksum)
          params.logger.warn({ migration: migration.name }, 'an applied migration was edited after it ran');
        continue;
      }
      await applyOne(client, migration);
      newlyApplied.push(migration.name);
      params.logger.info({ migration: migration.name }, 'migration applied');
    }
    return { applied: newlyApplied };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
    await client.end();
  }
}

interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

async function readMigrations(directory: string): Promise<Migration[]> {
  const entries = await readdir(directory, { withFileTypes: true });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(directory, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

async function applyOne(client: pg.Client, migration: Migration): Promise<void> {
  const id = randomUUID();
  await client.query('INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())', [
    id,
    migration.checksum,
    migration.name,
  ]);
  try {
    await client.query('BEGIN');
    await client.query(migration.sql);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    // The statements were rolled back, so the record is too: the next start tries again.
    await client.query('DELETE FROM "_prisma_migrations" WHERE id = $1', [id]);
    throw new MigrationError(`Migration ${migration.name} failed: ${(error as Error).message}`);
  }
  await client.query('UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1', [id]);
}
