import type { Readable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import type { ListQuery, Page, PolicyAccess, PolicyView } from '@kura/schema';
import { isAdmin, requireRole, type Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { storeBody } from '../blobs/store-body.js';
import { newId } from '../common/ids.js';
import { decodeCursor, toPage } from '../common/pagination.js';
import type { KuraConfig } from '../config/config.js';
import { KURA_CONFIG } from '../database/database.tokens.js';
import { JobsService } from '../jobs/jobs.service.js';
import { PoliciesRepository, type PolicyRecord, type PolicyVisibility } from './policies.repository.js';
import { PolicyHosts } from './hosts/policy-hosts.service.js';
import { policyBundleEmpty, policyBundleInterrupted, policyBundleTooLarge, policyNotFound } from './policies.errors.js';

export const validatePolicyJobId = (policyId: string) => `policies.validate:${policyId}`;

/** How many ready policy records a process keeps (findVisible). */
const READY_POLICIES_KEPT = 1000;

/** Policy bundles: upload (stored, then validated by a job), listing, lookup. */
@Injectable()
export class PoliciesService {
  private readonly ready = new Map<string, PolicyRecord>();

  constructor(
    private readonly policies: PoliciesRepository,
    private readonly jobs: JobsService,
    private readonly hosts: PolicyHosts,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
  ) {}

  /**
   * Stores a bundle and queues its validation. Name and version come when validation has read
   * policy.json (a new version of the owner's policy of that name); until then both are null.
   */
  async upload(principal: Principal, params: { body: Readable; access: PolicyAccess }): Promise<PolicyView> {
    requireRole(principal, ['developer'], 'upload policies');
    // Said before the bundle is stored: it could never be validated or run here.
    this.hosts.assertAvailable();
    const id = newId('pol');
    const bundleKey = `policies/${id}/bundle`;
    const maxBytes = this.config.policies.maxBundleBytes;
    const { bytes, sha256 } = await storeBody({
      blobs: this.blobs,
      key: bundleKey,
      body: params.body,
      maxBytes,
      tooLarge: () => policyBundleTooLarge(maxBytes),
      interrupted: policyBundleInterrupted,
    });
    if (bytes === 0) {
      await this.blobs.delete({ key: bundleKey });
      throw policyBundleEmpty();
    }
    const policy = await this.policies.create({
      id,
      ownerKeyId: principal.keyId,
      access: params.access,
      runtime: 'unknown',
      bundleKey,
      bytes: BigInt(bytes),
      sha256,
    });
    await this.jobs.enqueue('policies.validate', { policyId: id }, { id: validatePolicyJobId(id) });
    return toPolicyView(policy);
  }

  async get(principal: Principal, id: string): Promise<PolicyView> {
    return toPolicyView(await this.findVisible(principal, id));
  }

  async list(principal: Principal, query: ListQuery & { name?: string | undefined }): Promise<Page<PolicyView>> {
    const rows = await this.policies.list({
      visibility: policyVisibility(principal),
      name: query.name,
      afterId: decodeCursor(query.cursor, 'pol'),
      take: query.limit + 1,
    });
    return toPage(rows, query.limit, toPolicyView);
  }

  /** The policy whatever its visibility (for Kura's own bookkeeping), or null. */
  findById(id: string): Promise<PolicyRecord | null> {
    return this.policies.findById(id);
  }

  /**
   * The policy, or POLICY_NOT_FOUND when it does not exist or is another key's private policy. Ready
   * is a final state (nothing about a ready policy changes after), so ready ones are kept in memory:
   * the act path then reads no policy row per call.
   */
  async findVisible(principal: Principal, id: string): Promise<PolicyRecord> {
    const policy = this.ready.get(id) ?? (await this.policies.findById(id));
    if (policy?.status === 'ready' && !this.ready.has(id)) {
      if (this.ready.size >= READY_POLICIES_KEPT) this.ready.delete(this.ready.keys().next().value!);
      this.ready.set(id, policy);
    }
    if (!policy || !canSeePolicy(principal, policy)) throw policyNotFound(id);
    return policy;
  }
}

export function policyVisibility(principal: Principal): PolicyVisibility {
  if (principal.kind === 'anonymous') return { kind: 'public' };
  return isAdmin(principal) ? { kind: 'all' } : { kind: 'public-or-owned', keyId: principal.keyId };
}

export function canSeePolicy(principal: Principal, policy: Pick<PolicyRecord, 'access' | 'ownerKeyId'>): boolean {
  if (policy.access === 'public') return true;
  return principal.kind === 'key' && (principal.role === 'admin' || principal.keyId === policy.ownerKeyId);
}

export function toPolicyView(policy: PolicyRecord): PolicyView {
  return {
    id: policy.id,
    name: policy.name,
    version: policy.version,
    runtime: policy.runtime,
    access: policy.access,
    status: policy.status,
    errors: policy.errors,
    manifest: policy.manifest,
    ownerKeyId: policy.ownerKeyId,
    bytes: Number(policy.bytes),
    sha256: policy.sha256,
    createdAt: policy.createdAt.toISOString(),
    trainedBy: policy.trainedBy,
  };
}
