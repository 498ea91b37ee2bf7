import { Inject, Injectable } from '@nestjs/common';
import {
  EDGE_LICENSE_FORMAT,
  EDGE_MAX_LIFETIME_DAYS,
  edgePackageFiles,
  type EdgeExportRequest,
  type EdgeExportView,
  type EdgeLicense,
  type EdgeRenewRequest,
  type EdgeUsageReport,
  type EdgeUsageReportView,
  type EdgeUsageView,
} from '@kura/schema';
import { ownsOrAdmin, requireRole, type Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { readBlobBytes } from '../blobs/json-blobs.js';
import { newId } from '../common/ids.js';
import type { KuraConfig } from '../config/config.js';
import { KURA_CONFIG } from '../database/database.tokens.js';
import { Prisma, PrismaClient } from '../database/prisma.js';
import { shareNumber, shares } from '../ledger/money.js';
import { TermsRepository } from '../ledger/terms.repository.js';
import { PoliciesService } from '../policies/policies.service.js';
import type { PolicyRecord } from '../policies/policies.repository.js';
import { PolicyLoader } from '../policies/policy-loader.service.js';
import { EdgeKeysService } from './edge-keys.service.js';
import {
  edgeExportDenied,
  edgeExportNotFound,
  edgeExportNotOwned,
  edgeExportRevoked,
  edgeExpiryInvalid,
  edgePolicyNotReady,
  edgeReportRequired,
  edgeUsageRefused,
} from './edge.errors.js';
import { checkContinuation, checkOrder, genesisHash, UsageChainError, type ChainHead } from './usage-chain.js';
import { packEdgePackage, sha256 } from './edge-package.js';

const DAY = 86_400_000;

/**
 * Edge packages (docs/edge.md): a ready policy with its bundle, resolved normalization and a license
 * the deployment signs — only when every dataset of its lineage allows edge export under its terms
 * now. Each export records the license (and so the terms) it was made under.
 */
@Injectable()
export class EdgeExportsService {
  constructor(
    @Inject(PrismaClient) private readonly prisma: PrismaClient,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly policies: PoliciesService,
    private readonly loader: PolicyLoader,
    private readonly terms: TermsRepository,
    private readonly keys: EdgeKeysService,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
  ) {}

  /** Makes an export: its record and the package's bytes. */
  async create(principal: Principal, policyId: string, request: EdgeExportRequest): Promise<{ view: EdgeExportView; tar: Buffer }> {
    const policy = await this.ownedPolicy(principal, policyId);
    if (policy.status !== 'ready' || !policy.manifest) throw edgePolicyNotReady(policy.id, policy.status);
    const now = new Date();
    checkExpiry(request.expiresAt, now);

    const sources = policy.trainedBy?.sources ?? [];
    const datasetIds = [...new Set(sources.map((source) => source.datasetId))];
    const inEffect = await this.terms.inEffect(datasetIds, now);
    const denied = datasetIds.flatMap((datasetId) => {
      const terms = inEffect.get(datasetId);
      if (!terms) return [{ datasetId, reason: 'it has no terms, so no edge export' }];
      return terms.edgeExport === 'allow' ? [] : [{ datasetId, reason: `its terms ${terms.id} deny edge export` }];
    });
    if (denied.length > 0) throw edgeExportDenied(policy.id, denied);

    const bundle = await readBlobBytes(this.blobs, policy.bundleKey);
    const normalization = await this.loader.normalization({ ownerKeyId: policy.ownerKeyId, manifest: policy.manifest });
    const features = await this.loader.normalizationFeatures(policy.manifest);
    // The dataset's features too: the device checks observations against the shapes the server does.
    const normalizationBytes = normalization
      ? Buffer.from(
          JSON.stringify({ mode: normalization.mode, stats: Object.fromEntries(normalization.stats), ...(features ? { features } : {}) }),
        )
      : undefined;
    const fractions = shares(sources.map((source) => source.weight));
    const id = newId('edx');
    // One key names itself in the license and signs it, whatever a rotation does meanwhile.
    const signer = await this.keys.signer();
    const license: EdgeLicense = {
      format: EDGE_LICENSE_FORMAT,
      exportId: id,
      kid: signer.kid,
      issuedAt: now.toISOString(),
      expiresAt: request.expiresAt.toISOString(),
      licensee: { keyId: principal.kind === 'key' ? principal.keyId : '' },
      deviceId: request.deviceId,
      callQuota: request.callQuota ?? null,
      policy: {
        id: policy.id,
        name: policy.name,
        version: policy.version,
        runtime: policy.runtime,
        sha256: sha256(bundle),
        normalizationSha256: normalizationBytes ? sha256(normalizationBytes) : null,
      },
      lineage: sources.map((source, index) => ({ ...source, share: shareNumber(fractions[index]!) })),
      terms: datasetIds.map((datasetId) => {
        const terms = inEffect.get(datasetId)!;
        return {
          datasetId,
          termsId: terms.id,
          edgeExport: terms.edgeExport,
          feeMinorPer1000: Number(terms.feeMinorPer1000),
          currency: terms.currency,
        };
      }),
    };
    const licenseBytes = Buffer.from(JSON.stringify(license, null, 2));
    const signature = signer.sign(licenseBytes);
    const record = await this.prisma.edgeExport.create({
      data: {
        id,
        policyId: policy.id,
        ownerKeyId: license.licensee.keyId,
        deviceId: request.deviceId,
        expiresAt: request.expiresAt,
        callQuota: request.callQuota === undefined ? null : BigInt(request.callQuota),
        kid: signer.kid,
        license: license as unknown as Prisma.InputJsonObject,
      },
    });
    const files: Array<[string, Uint8Array]> = [
      [edgePackageFiles.license, licenseBytes],
      [edgePackageFiles.signature, Buffer.from(`${signature}\n`)],
      [edgePackageFiles.manifest, Buffer.from(JSON.stringify(policy.manifest, null, 2))],
      [edgePackageFiles.bundle, bundle],
      ...(normalizationBytes ? [[edgePackageFiles.normalization, normalizationBytes] as [string, Uint8Array]] : []),
    ];
    return { view: toView(record), tar: await packEdgePackage(files, now) };
  }

  /**
   * Accepts a device's usage report (its licensee, or an admin): records already accepted are
   * recognised by hash and skipped, the rest must continue the chain (usage-chain.ts) and are kept
   * with their calls, which the ledger prices by the terms the license recorded. All or nothing; one
   * report at a time per export (the export's row is locked).
   */
  async report(principal: Principal, id: string, report: EdgeUsageReport): Promise<EdgeUsageReportView> {
    const record = await this.owned(principal, id);
    if (record.revokedAt) throw edgeExportRevoked(record.id, record.revokedAt);
    const { records } = report;
    const now = new Date();
    return this.prisma.$transaction(async (transaction) => {
      const [row] = await transaction.$queryRaw<Array<{ lastSeq: number; lastHash: string | null; lastTo: Date | null }>>`
        SELECT last_seq AS "lastSeq", last_hash AS "lastHash", last_to AS "lastTo" FROM edge_exports WHERE id = ${record.id} FOR UPDATE`;
      const head: ChainHead = { seq: row!.lastSeq, hash: row!.lastHash ?? genesisHash(record.id), to: row!.lastTo?.toISOString() ?? null };
      const known = records.filter((item) => item.seq <= head.seq);
      const fresh = records.slice(known.length);
      const next = refusingChainErrors(() => {
        checkOrder(records);
        return checkContinuation(record.id, head, fresh, { now, skewMs: CLOCK_SKEW_MS, offset: known.length });
      });
      if (known.length > 0) {
        const stored = await transaction.edgeUsageRecord.findMany({
          where: { exportId: record.id, seq: { in: known.map((item) => item.seq) } },
          select: { seq: true, hash: true },
        });
        const hashOf = new Map(stored.map((item) => [item.seq, item.hash]));
        known.forEach((item, index) => {
          if (hashOf.get(item.seq) !== item.hash)
            throw edgeUsageRefused(
              'EDGE_USAGE_REWRITTEN',
              `record ${item.seq} differs from the record ${item.seq} accepted before: an accepted record cannot change`,
              index,
              'hash',
            );
        });
      }
      const calls = fresh.reduce((sum, item) => sum + BigInt(item.calls), 0n);
      if (fresh.length > 0)
        await transaction.edgeUsageRecord.createMany({
          data: fresh.map((item) => ({
            exportId: record.id,
            seq: item.seq,
            fromAt: new Date(item.from),
            toAt: new Date(item.to),
            calls: BigInt(item.calls),
            prevHash: item.prev,
            hash: item.hash,
          })),
        });
      const updated = await transaction.edgeExport.update({
        where: { id: record.id },
        data: {
          lastSeq: next.seq,
          lastHash: next.seq === 0 ? null : next.hash,
          lastTo: next.to === null ? null : new Date(next.to),
          reportedCalls: { increment: calls },
          lastReportAt: now,
        },
      });
      return {
        exportId: record.id,
        ...usageView(updated),
        accepted: fresh.length,
        duplicates: known.length,
        overQuota: updated.callQuota !== null && updated.reportedCalls > updated.callQuota,
      };
    });
  }

  /**
   * Extends an export's expiry (its licensee, or an admin) when its device reported usage within
   * KURA_EDGE_REPORT_MAX_AGE_DAYS: a new license with the same lineage, terms and quota, signed now.
   * The device puts it in its package in place of the old one (kura edge renew).
   */
  async renew(
    principal: Principal,
    id: string,
    request: EdgeRenewRequest,
  ): Promise<{ view: EdgeExportView; license: string; signature: string }> {
    const record = await this.owned(principal, id);
    if (record.revokedAt) throw edgeExportRevoked(record.id, record.revokedAt);
    const now = new Date();
    checkExpiry(request.expiresAt, now);
    const maxAgeDays = this.config.edge.reportMaxAgeDays;
    if (!record.lastReportAt || now.getTime() - record.lastReportAt.getTime() > maxAgeDays * DAY)
      throw edgeReportRequired(record.id, record.lastReportAt, maxAgeDays);
    const signer = await this.keys.signer();
    const license: EdgeLicense = {
      ...(record.license as unknown as EdgeLicense),
      kid: signer.kid,
      issuedAt: now.toISOString(),
      expiresAt: request.expiresAt.toISOString(),
    };
    const licenseBytes = Buffer.from(JSON.stringify(license, null, 2));
    const updated = await this.prisma.edgeExport.update({
      where: { id: record.id },
      data: { expiresAt: request.expiresAt, kid: signer.kid, license: license as unknown as Prisma.InputJsonObject, renewedAt: now },
    });
    return { view: toView(updated), license: licenseBytes.toString('utf8'), signature: signer.sign(licenseBytes) };
  }

  /** A policy's exports, newest first (its owner, or an admin). */
  async list(principal: Principal, policyId: string): Promise<{ items: EdgeExportView[] }> {
    const policy = await this.ownedPolicy(principal, policyId);
    const rows = await this.prisma.edgeExport.findMany({ where: { policyId: policy.id }, orderBy: { createdAt: 'desc' } });
    return { items: rows.map(toView) };
  }

  async get(principal: Principal, id: string): Promise<EdgeExportView> {
    return toView(await this.owned(principal, id));
  }

  /** Revokes an export: its next usage report or renewal is refused. Revoking twice is the same as once. */
  async revoke(principal: Principal, id: string): Promise<EdgeExportView> {
    const record = await this.owned(principal, id);
    if (record.revokedAt) return toView(record);
    return toView(await this.prisma.edgeExport.update({ where: { id: record.id }, data: { revokedAt: new Date() } }));
  }

  private async owned(principal: Principal, id: string) {
    requireRole(principal, ['operator', 'developer', 'user'], 'see an edge export');
    const record = await this.prisma.edgeExport.findUnique({ where: { id } });
    if (!record || !ownsOrAdmin(principal, record.ownerKeyId)) throw edgeExportNotFound(id);
    return record;
  }

  private async ownedPolicy(principal: Principal, policyId: string): Promise<PolicyRecord> {
    requireRole(principal, ['operator', 'developer', 'user'], 'export a policy');
    const policy = await this.policies.findVisible(principal, policyId);
    if (!ownsOrAdmin(principal, policy.ownerKeyId)) throw edgeExportNotOwned(policy.id);
    return policy;
  }
}

/** Devices' clocks drift: a window may end this far after the deployment's now. */
const CLOCK_SKEW_MS = 5 * 60_000;

function checkExpiry(expiresAt: Date, now: Date): void {
  if (!(expiresAt > now) || expiresAt.getTime() - now.getTime() > EDGE_MAX_LIFETIME_DAYS * DAY)
    throw edgeExpiryInvalid(expiresAt, EDGE_MAX_LIFETIME_DAYS);
}

/** Runs the chain checks, turning a UsageChainError into its coded refusal (409, naming the record and field). */
function refusingChainErrors<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof UsageChainError) throw edgeUsageRefused(error.code, error.message, error.index, error.field);
    throw error;
  }
}

interface UsageColumns {
  id: string;
  lastSeq: number;
  lastHash: string | null;
  lastTo: Date | null;
  reportedCalls: bigint;
  lastReportAt: Date | null;
}

const usageView = (record: UsageColumns): EdgeUsageView => ({
  lastSeq: record.lastSeq,
  lastHash: record.lastHash ?? genesisHash(record.id),
  lastTo: record.lastTo?.toISOString() ?? null,
  calls: Number(record.reportedCalls),
  lastReportAt: record.lastReportAt?.toISOString() ?? null,
});

function toView(
  record: UsageColumns & {
    id: string;
    policyId: string;
    deviceId: string;
    expiresAt: Date;
    callQuota: bigint | null;
    kid: string;
    createdAt: Date;
    revokedAt: Date | null;
    license: unknown;
  },
): EdgeExportView {
  return {
    id: record.id,
    policyId: record.policyId,
    deviceId: record.deviceId,
    expiresAt: record.expiresAt.toISOString(),
    callQuota: record.callQuota === null ? null : Number(record.callQuota),
    kid: record.kid,
    createdAt: record.createdAt.toISOString(),
    revokedAt: record.revokedAt?.toISOString() ?? null,
    license: record.license as EdgeLicense,
    usage: usageView(record),
  };
}
