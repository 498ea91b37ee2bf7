import { Inject, Injectable } from '@nestjs/common';
import { PrismaClient } from '../database/prisma.js';

export interface GrantRecord {
  datasetId: string;
  keyId: string;
  grantedBy: string;
  createdAt: Date;
}

const grantSelect = { datasetId: true, keyId: true, grantedBy: true, createdAt: true } as const;

@Injectable()
export class GrantsRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  /** Creates the grant, or returns the existing one (granting twice is not an error). */
  upsert(data: { datasetId: string; keyId: string; grantedBy: string }): Promise<GrantRecord> {
    return this.prisma.datasetGrant.upsert({
      where: { datasetId_keyId: { datasetId: data.datasetId, keyId: data.keyId } },
      create: data,
      update: {},
      select: grantSelect,
    });
  }

  async delete(datasetId: string, keyId: string): Promise<boolean> {
    const { count } = await this.prisma.datasetGrant.deleteMany({ where: { datasetId, keyId } });
    return count > 0;
  }

  async exists(datasetId: string, keyId: string): Promise<boolean> {
    return (await this.prisma.datasetGrant.count({ where: { datasetId, keyId } })) > 0;
  }

  list(params: { datasetId: string; afterKeyId: string | undefined; take: number }): Promise<GrantRecord[]> {
    return this.prisma.datasetGrant.findMany({
      where: { datasetId: params.datasetId, ...(params.afterKeyId ? { keyId: { gt: params.afterKeyId } } : {}) },
      orderBy: { keyId: 'asc' },
      take: params.take,
      select: grantSelect,
    });
  }
}
