import { Inject, Injectable } from '@nestjs/common';
import type { PolicyAccess, PolicyLineage, PolicyManifest, PolicyProblem, PolicyStatus } from '@kura/schema';
import { Prisma, PrismaClient } from '../database/prisma.js';

export interface PolicyRecord {
  id: string;
  name: string | null;
  version: number | null;
  ownerKeyId: string;
  access: PolicyAccess;
  runtime: string;
  status: PolicyStatus;
  manifest: PolicyManifest | null;
  errors: PolicyProblem[];
  bundleKey: string;
  entryKey: string | null;
  bytes: bigint;
  sha256: string;
  createdAt: Date;
  trainedBy: PolicyLineage | null;
}

const policySelect = {
  id: true,
  name: true,
  version: true,
  ownerKeyId: true,
  access: true,
  runtime: true,
  status: true,
  manifest: true,
  errors: true,
  bundleKey: true,
  entryKey: true,
  bytes: true,
  sha256: true,
  createdAt: true,
  training: { select: { id: true, trainerId: true, sources: true } },
} as const;

type PolicyRow = Prisma.PolicyGetPayload<{ select: typeof policySelect }>;
// manifest and errors are written only from validated values (PoliciesService, ValidatePolicyJob).
const toRecord = ({ training, ...row }: PolicyRow): PolicyRecord => ({
  ...row,
  manifest: row.manifest as PolicyManifest | null,
  errors: row.errors as unknown as PolicyProblem[],
  trainedBy: training ? { trainingId: training.id, trainerId: training.trainerId, sources: lineageSources(training.sources) } : null,
});

/** A run's pinned sources (written by TrainingsRepository), as lineage shows them. */
function lineageSources(sources: Prisma.JsonValue): PolicyLineage['sources'] {
  return (sources as Array<{ datasetId: string; version: number; weight: number }>).map(({ datasetId, version, weight }) => ({
    datasetId,
    version,
    weight,
  }));
}

/** Which policies a caller may list: all (admins), public ones plus its own, or public ones only. */
export type PolicyVisibility = { kind: 'all' } | { kind: 'public-or-owned'; keyId: string } | { kind: 'public' };

export function visibilityWhere(visibility: PolicyVisibility): Prisma.PolicyWhereInput {
  if (visibility.kind === 'all') return {};
  if (visibility.kind === 'public') return { access: 'public' };
  return { OR: [{ access: 'public' }, { ownerKeyId: visibility.keyId }] };
}

@Injectable()
export class PoliciesRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  async create(
    data: Omit<PolicyRecord, 'name' | 'version' | 'createdAt' | 'status' | 'manifest' | 'errors' | 'entryKey' | 'trainedBy'>,
  ): Promise<PolicyRecord> {
    return toRecord(await this.prisma.policy.create({ data, select: policySelect }));
  }

  /**
   * Files the policy under its name as the owner's next version of it (versions count up from 1
   * per owner and name). Idempotent: a policy that already has a version keeps it.
   */
  async assignVersion(id: string, name: string): Promise<number> {
    return this.prisma.$transaction(async (transaction) => {
      const policy = await transaction.policy.findUniqueOrThrow({ where: { id }, select: { ownerKeyId: true, version: true } });
      if (policy.version !== null) return policy.version;
      // One writer per owner and name at a time, so two validations cannot take the same version.
      await transaction.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`${policy.ownerKeyId}/${name}`}))`;
      const last = await transaction.policy.findFirst({
        where: { ownerKeyId: policy.ownerKeyId, name, version: { not: null } },
        orderBy: { version: 'desc' },
        select: { version: true },
      });
      const version = (last?.version ?? 0) + 1;
      await transaction.policy.update({ where: { id }, data: { name, version } });
      return version;
    });
  }

  async findById(id: string): Promise<PolicyRecord | null> {
    const row = await this.prisma.policy.findUnique({ where: { id }, select: policySelect });
    return row ? toRecord(row) : null;
  }

  async list(params: {
    visibility: PolicyVisibility;
    name?: string | undefined;
    afterId: string | undefined;
    take: number;
  }): Promise<PolicyRecord[]> {
    const rows = await this.prisma.policy.findMany({
      where: {
        AND: [
          visibilityWhere(params.visibility),
          params.name ? { name: params.name } : {},
          params.afterId ? { id: { gt: params.afterId } } : {},
        ],
      },
      orderBy: { id: 'asc' },
      take: params.take,
      select: policySelect,
    });
    return rows.map(toRecord);
  }

  /**
   * Records the outcome of a policy's validation, if it is still `validating`: the first outcome
   * stands (a validation that outlived its deadline must not overwrite the timeout's rejection).
   * Returns whether it was recorded.
   */
  async finishValidation(
    id: string,
    result: { status: 'ready' | 'rejected'; manifest: PolicyManifest | null; errors: PolicyProblem[]; entryKey: string | null },
  ): Promise<boolean> {
    const { count } = await this.prisma.policy.updateMany({
      where: { id, status: 'validating' },
      data: {
        status: result.status,
        manifest: result.manifest === null ? Prisma.DbNull : (result.manifest as Prisma.InputJsonValue),
        errors: result.errors as unknown as Prisma.InputJsonValue,
        entryKey: result.entryKey,
        ...(result.manifest ? { runtime: result.manifest.runtime } : {}),
      },
    });
    return count === 1;
  }
}
