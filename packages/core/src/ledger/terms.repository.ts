import { Inject, Injectable } from '@nestjs/common';
import type { EdgeExportTerm } from '@kura/schema';
import { PrismaClient } from '../database/prisma.js';

export interface TermsRecord {
  id: string;
  datasetId: string;
  edgeExport: EdgeExportTerm;
  feeMinorPer1000: bigint;
  currency: string;
  text: string | null;
  effectiveFrom: Date;
  setByKeyId: string;
  createdAt: Date;
}

/** The `dataset_terms` table: every set of terms a dataset had, never changed once written. */
@Injectable()
export class TermsRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  async create(record: Omit<TermsRecord, 'createdAt'>): Promise<TermsRecord> {
    return this.prisma.datasetTerms.create({ data: record });
  }

  /** A dataset's terms, newest first. */
  async history(datasetId: string): Promise<TermsRecord[]> {
    return this.prisma.datasetTerms.findMany({ where: { datasetId }, orderBy: [{ effectiveFrom: 'desc' }, { createdAt: 'desc' }] });
  }

  /** The terms in effect at `at` for each of the datasets that have some (the latest whose effectiveFrom ≤ at). */
  async inEffect(datasetIds: readonly string[], at: Date): Promise<Map<string, TermsRecord>> {
    const rows = await this.prisma.datasetTerms.findMany({
      where: { datasetId: { in: [...datasetIds] }, effectiveFrom: { lte: at } },
      orderBy: [{ effectiveFrom: 'desc' }, { createdAt: 'desc' }],
    });
    const current = new Map<string, TermsRecord>();
    for (const row of rows) if (!current.has(row.datasetId)) current.set(row.datasetId, row);
    return current;
  }
}
