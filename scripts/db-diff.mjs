// `npm run db:diff -- <name>`: writes prisma/migrations/<timestamp>_<name>/migration.sql with the SQL
// that takes the schema of the last migration to prisma/schema.prisma.
// `npm run db:diff -- --check`: fails when schema.prisma has changes no migration carries yet.
//
// `prisma migrate dev` needs Prisma's native schema engine, which cannot be downloaded here. This
// diffs two datamodels with the engine's WebAssembly build instead: the schema as of the last
// migration (kept beside the migrations as schema.snapshot.prisma) and the current one: the WASM
// engine cannot introspect Postgres through the pg adapter yet ("char" columns), and a datamodel diff
// needs no database. The engine still wants to connect to one at start, so a scratch embedded
// Postgres is started for it.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, startEmbeddedPostgres } from '@kura/core';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaPg } from '@prisma/adapter-pg';
import { loadSchemaEngine } from './schema-engine.mjs';

const migrationsDirectory = join('prisma', 'migrations');
const snapshotPath = join(migrationsDirectory, 'schema.snapshot.prisma');
const argument = process.argv[2];
const check = argument === '--check';
if (!check && (!argument || !/^[a-z0-9_]+$/.test(argument))) {
  console.error('usage: npm run db:diff -- <migration_name>   (lowercase letters, digits, _)\n       npm run db:diff -- --check');
  process.exit(2);
}

const schema = await readFile(join('prisma', 'schema.prisma'), 'utf8');
const snapshot = await readFile(snapshotPath, 'utf8').catch(() => undefined);
const SchemaEngine = await loadSchemaEngine();
const scratch = await mkdtemp(join(tmpdir(), 'kura-diff-'));
await chmod(scratch, 0o755);
const postgres = await startEmbeddedPostgres({
  directory: join(scratch, 'pg'),
  logger: createLogger('warn'),
});
const adapter = bindMigrationAwareSqlAdapterFactory(new PrismaPg({ connectionString: postgres.url }));
const engine = await SchemaEngine.new({ datamodels: [['schema.prisma', schema]] }, () => {}, adapter);
const { stdout } = await engine
  .diff({
    from:
      snapshot === undefined
        ? { tag: 'empty' }
        : {
            tag: 'schemaDatamodel',
            files: [{ path: 'schema.prisma', content: snapshot }],
          },
    to: {
      tag: 'schemaDatamodel',
      files: [{ path: 'schema.prisma', content: schema }],
    },
    script: true,
    exitCode: null,
    filters: { externalTables: [], externalEnums: [] },
  })
  .finally(async () => {
    await postgres.stop();
    await rm(scratch, { recursive: true, force: true });
  });
const sql = (stdout ?? '').trim();
const empty = !sql || sql === '-- This is an empty migration.';
if (check) {
  if (!empty) {
    console.error('prisma/schema.prisma has changes that no migration carries; run `npm run db:diff -- <name>`:\n' + sql);
    process.exit(1);
  }
  console.log('migrations match prisma/schema.prisma');
} else if (empty) {
  console.log('prisma/schema.prisma matches the migrations; nothing to write.');
} else {
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const folder = join(migrationsDirectory, `${stamp}_${argument}`);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'migration.sql'), `${sql}\n`);
  await writeFile(snapshotPath, schema);
  console.log(`wrote ${folder}/migration.sql`);
}
