import { Inject, Injectable } from '@nestjs/common';
import type { EdgeLicense } from '@kura/schema';
import { Prisma, PrismaClient } from '../database/prisma.js';

/** Calls of one policy under one set of a dataset's terms (null: before the dataset had terms). */
export interface TermsUsageRow {
  policyId: string;
  termsId: string | null;
  feeMinorPer1000: bigint;
  /** The terms' currency; null with no terms. */
  currency: string | null;
  actCalls: bigint;
  sessionSteps: bigint;
}

/** One edge export's reported calls in a range, and its license (lineage and terms as exported). */
export interface EdgeUsageRow {
  exportId: string;
  policyId: string;
  license: EdgeLicense;
  calls: bigint;
}

/** A policy trained on the platform and its run's pinned sources (the lineage the ledger splits by). */
export interface LineageRecord {
  policyId: string;
  policyName: string | null;
  policyVersion: number | null;
  sources: Array<{ datasetId: string; weight: number }>;
}

/** What the ledger reads: policies' lineage and their metered calls, priced minute by minute by a dataset's terms. */
@Injectable()
export class LedgerRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  /** The policies whose training run had `datasetId` among its sources (every policy with lineage when undefined). */
  async lineage(datasetId: string | undefined): Promise<LineageRecord[]> {
    const rows = await this.prisma.training.findMany({
      where: {
        policyId: { not: null },
        ...(datasetId ? { sources: { array_contains: [{ datasetId }] } } : {}),
      },
      select: { sources: true, policy: { select: { id: true, name: true, version: true } } },
      orderBy: { policyId: 'asc' },
    });
    return rows.flatMap((row) =>
      row.policy
        ? [
            {
              policyId: row.policy.id,
              policyName: row.policy.name,
              policyVersion: row.policy.version,
              sources: (row.sources as Array<{ datasetId: string; weight: number }>).map(({ datasetId, weight }) => ({
                datasetId,
                weight,
              })),
            },
          ]
        : [],
    );
  }

  /**
   * The calls of `policyIds` in minutes [from, to), each minute priced by the terms of `datasetId`
   * in effect then (the latest whose effective_from ≤ the minute), summed per policy and terms.
   */
  async usageByTerms(params: { datasetId: string; policyIds: readonly string[]; from: Date; to: Date }): Promise<TermsUsageRow[]> {
    if (params.policyIds.length === 0) return [];
    return this.prisma.$queryRaw<TermsUsageRow[]>`
      SELECT u.policy_id AS "policyId", t.id AS "termsId", COALESCE(t.fee_minor_per_1000, 0)::bigint AS "feeMinorPer1000", t.currency,
             SUM(u.act_calls)::bigint AS "actCalls", SUM(u.session_steps)::bigint AS "sessionSteps"
      FROM policy_usage_counters u
      LEFT JOIN LATERAL (
        SELECT id, fee_minor_per_1000, currency FROM dataset_terms
        WHERE dataset_id = ${params.datasetId} AND effective_from <= u.bucket
        ORDER BY effective_from DESC, created_at DESC LIMIT 1
      ) t ON true
      WHERE u.policy_id IN (${Prisma.join([...params.policyIds])}) AND u.bucket >= ${params.from} AND u.bucket < ${params.to}
      GROUP BY u.policy_id, t.id, t.fee_minor_per_1000, t.currency
      ORDER BY u.policy_id, t.id NULLS FIRST`;
  }

  /**
   * Calls the devices of edge exports reported in [from, to) (by the end of each record's window),
   * per export whose license names `datasetId` in its lineage (every export when undefined), with the
   * license the calls are priced by.
   */
  async edgeUsage(params: { datasetId: string | undefined; from: Date; to: Date }): Promise<EdgeUsageRow[]> {
    const lineage =
      params.datasetId === undefined
        ? Prisma.empty
        : Prisma.sql`AND e.license -> 'lineage' @> ${JSON.stringify([{ datasetId: params.datasetId }])}::jsonb`;
    return this.prisma.$queryRaw<EdgeUsageRow[]>`
      SELECT e.id AS "exportId", e.policy_id AS "policyId", e.license, SUM(r.calls)::bigint AS calls
      FROM edge_usage_records r JOIN edge_exports e ON e.id = r.export_id
      WHERE r.to_at >= ${params.from} AND r.to_at < ${params.to} ${lineage}
      GROUP BY e.id, e.policy_id, e.license
      ORDER BY e.policy_id, e.id`;
  }

  /** Names and owners of datasets, by id. */
  async datasets(ids: readonly string[]): Promise<Map<string, { name: string; ownerKeyId: string }>> {
    const rows = await this.prisma.dataset.findMany({
      where: { id: { in: [...ids] } },
      select: { id: true, name: true, ownerKeyId: true },
    });
    return new Map(rows.map((row) => [row.id, { name: row.name, ownerKeyId: row.ownerKeyId }]));
  }
}
