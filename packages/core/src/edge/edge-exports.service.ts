import { Inject, Injectable } from '@nestjs/common';
import {
  EDGE_LICENSE_FORMAT,
  EDGE_MAX_LIFETIME_DAYS,
  edgePackageFiles,
  type EdgeExportRequest,
  type EdgeExportView,
  type EdgeLicense,
} from '@kura/schema';
import { ownsOrAdmin, requireRole, type Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { readBlobBytes } from '../blobs/json-blobs.js';
import { newId } from '../common/ids.js';
import { Prisma, PrismaClient } from '../database/prisma.js';
import { shareNumber, shares } from '../ledger/money.js';
import { TermsRepository } from '../ledger/terms.repository.js';
import { PoliciesService } from '../policies/policies.service.js';
import type { PolicyRecord } from '../policies/policies.repository.js';
import { PolicyLoader } from '../policies/policy-loader.service.js';
import { EdgeKeysService } from './edge-keys.service.js';
import { edgeExportDenied, edgeExportNotFound, edgeExportNotOwned, edgeExpiryInvalid, edgePolicyNotReady } from './edge.errors.js';
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
  ) {}

  /** Makes an export: its record and the package's bytes. */
  async create(principal: Principal, policyId: string, request: EdgeExportRequest): Promise<{ view: EdgeExportView; tar: Buffer }> {
    const policy = await this.ownedPolicy(principal, policyId);
    if (policy.status !== 'ready' || !policy.manifest) throw edgePolicyNotReady(policy.id, policy.status);
    const now = new Date();
    if (!(request.expiresAt > now) || request.expiresAt.getTime() - now.getTime() > EDGE_MAX_LIFETIME_DAYS * DAY)
      throw edgeExpiryInvalid(request.expiresAt, EDGE_MAX_LIFETIME_DAYS);

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
    const normalizationBytes = normalization
      ? Buffer.from(JSON.stringify({ mode: normalization.mode, stats: Object.fromEntries(normalization.stats) }))
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

function toView(record: {
  id: string;
  policyId: string;
  deviceId: string;
  expiresAt: Date;
  callQuota: bigint | null;
  kid: string;
  createdAt: Date;
  revokedAt: Date | null;
  license: unknown;
}): EdgeExportView {
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
  };
}
