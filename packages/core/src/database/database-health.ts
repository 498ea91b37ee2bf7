import { Inject, Injectable } from '@nestjs/common';
import { DATABASE_OUTAGE } from './database.tokens.js';
import { PrismaClient } from './prisma.js';

/** Whether Postgres answers, for /health. */
@Injectable()
export class DatabaseHealth {
  constructor(
    @Inject(PrismaClient) private readonly prisma: PrismaClient,
    @Inject(DATABASE_OUTAGE) private readonly outage: () => string | undefined,
  ) {}

  /** Resolves once the database has answered a trivial query. */
  async ping(): Promise<void> {
    const outage = this.outage();
    if (outage) throw new Error(outage);
    await this.prisma.$queryRaw`SELECT 1`;
  }

  /** Whether the database is down and this process is restarting it (embedded mode). */
  recovering(): boolean {
    return this.outage() !== undefined;
  }
}
