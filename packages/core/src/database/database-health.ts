import { Inject, Injectable } from '@nestjs/common';
import { PrismaClient } from './prisma.js';

/** Whether Postgres answers, for /health. */
@Injectable()
export class DatabaseHealth {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  /** Resolves once the database has answered a trivial query. */
  async ping(): Promise<void> {
    await this.prisma.$queryRaw`SELECT 1`;
  }
}
