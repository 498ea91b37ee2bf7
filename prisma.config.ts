import { defineConfig } from 'prisma/config';

// Used by the Prisma CLI (`prisma generate`). The URL is only needed by commands that talk to a
// database; Kura applies its migrations with its own runner (README → Database).
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://localhost:5432/kura' },
});
