import { createHash, randomBytes } from 'node:crypto';
import { writeFile, mkdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import type { ApiKeyView, CreateKeyRequest, KeyQuota, ListQuery, Page, Role, UpdateKeyRequest } from '@kura/schema';
import { newId } from '../common/ids.js';
import { decodeCursor, toPage } from '../common/pagination.js';
import type { KuraConfig } from '../config/config.js';
import { KURA_CONFIG, LOGGER } from '../database/database.tokens.js';
import type { Logger } from '../logging/logger.js';
import { invalidApiKey, keyNotFound, lastAdminKey } from './auth.errors.js';
import { KeyCache } from './key-cache.js';
import { KeysRepository, type ApiKeyRecord } from './keys.repository.js';
import { requireRole, type Principal } from './principal.js';

// lastUsedAt is informative; writing it on every request would double the load of reads.
const TOUCH_INTERVAL_MS = 60_000;

@Injectable()
export class KeysService {
  private readonly lastTouched = new Map<string, number>();

  constructor(
    private readonly keys: KeysRepository,
    private readonly cache: KeyCache,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Creates a key (admin only). The reply is the only time the key is shown. */
  async create(principal: Principal, request: CreateKeyRequest): Promise<ApiKeyView & { key: string }> {
    requireRole(principal, [], 'create API keys');
    return this.insertKey({
      name: request.name,
      role: request.role,
      quota: normalizeQuota(request.quota),
      createdBy: principal.keyId,
      key: generateKey(),
    });
  }

  /**
   * Resolves a presented key to its principal. Active keys are cached only while every change to a
   * key is heard (KeyCache), so a revoked key fails with the next request, in every process.
   */
  async authenticate(presentedKey: string): Promise<Principal> {
    const keyHash = hashKey(presentedKey);
    let key = this.cache.get(keyHash);
    if (!key) {
      const readStarted = this.cache.readStarted();
      key = (await this.keys.findActiveByHash(keyHash)) ?? undefined;
      if (!key) throw invalidApiKey();
      this.cache.set(keyHash, key, readStarted);
    }
    const now = Date.now();
    if (now - (this.lastTouched.get(key.id) ?? 0) > TOUCH_INTERVAL_MS) {
      this.lastTouched.set(key.id, now);
      this.keys
        .touch(key.id, new Date(now))
        .catch((error: unknown) => this.logger.warn({ err: error, keyId: key.id }, 'could not record key use'));
    }
    return { kind: 'key', keyId: key.id, role: key.role, name: key.name, quota: key.quota };
  }

  async list(principal: Principal, query: ListQuery): Promise<Page<ApiKeyView>> {
    requireRole(principal, [], 'list API keys');
    const rows = await this.keys.list({ afterId: decodeCursor(query.cursor, 'key'), take: query.limit + 1 });
    return toPage(rows, query.limit, toView);
  }

  async me(principal: Principal): Promise<ApiKeyView> {
    requireRole(principal, ['operator', 'developer', 'user'], 'read its own key');
    const key = await this.keys.findById(principal.keyId);
    if (!key) throw keyNotFound(principal.keyId);
    return toView(key);
  }

  async get(principal: Principal, id: string): Promise<ApiKeyView> {
    requireRole(principal, [], 'read API keys');
    const key = await this.keys.findById(id);
    if (!key) throw keyNotFound(id);
    return toView(key);
  }

  /** Renames a key or sets its quota (admin); a new quota holds from the key's next request. */
  async update(principal: Principal, id: string, request: UpdateKeyRequest): Promise<ApiKeyView> {
    requireRole(principal, [], 'change API keys');
    const key = await this.keys.update(id, {
      name: request.name,
      quota: request.quota === undefined ? undefined : normalizeQuota(request.quota),
    });
    this.cache.forget(id);
    if (!key) throw keyNotFound(id);
    return toView(key);
  }

  /** Revokes a key; it stops working with the next request. The last admin key cannot be revoked. */
  async revoke(principal: Principal, id: string): Promise<ApiKeyView> {
    requireRole(principal, [], 'revoke API keys');
    const outcome = await this.keys.revoke(id);
    this.cache.forget(id);
    if (outcome === 'not-found') throw keyNotFound(id);
    if (outcome === 'last-admin') throw lastAdminKey(id);
    const key = await this.keys.findById(id);
    if (!key) throw keyNotFound(id);
    return toView(key);
  }

  /**
   * Makes sure an admin can get in on first start: takes KURA_ADMIN_KEY when set, otherwise creates
   * a key when no active admin key exists, prints it once and writes it to $KURA_DATA_DIR/admin.key
   * (mode 0600). Safe when several processes start at once.
   */
  async bootstrapAdminKey(): Promise<{ created: boolean; keyFile?: string }> {
    return this.keys.withBootstrapLock(async () => {
      if (this.config.adminKey) {
        const existing = await this.keys.findByHash(hashKey(this.config.adminKey));
        if (existing) return { created: false };
        await this.insertKey({ name: 'admin (KURA_ADMIN_KEY)', role: 'admin', quota: null, createdBy: null, key: this.config.adminKey });
        this.logger.info('admin key from KURA_ADMIN_KEY registered');
        return { created: true };
      }
      if ((await this.keys.countActiveAdmins()) > 0) return { created: false };
      const key = generateKey();
      await this.insertKey({ name: 'admin (first start)', role: 'admin', quota: null, createdBy: null, key });
      await mkdir(this.config.dataDir, { recursive: true });
      const keyFile = join(this.config.dataDir, 'admin.key');
      await writeFile(keyFile, `${key}\n`, { mode: 0o600 });
      await chmod(keyFile, 0o600);
      // Printed once, on purpose: the operator needs it to create the other keys.
      process.stdout.write(`\nKura admin API key (shown once, also saved to ${keyFile}):\n  ${key}\n\n`);
      return { created: true, keyFile };
    });
  }

  private async insertKey(params: {
    name: string;
    role: Role;
    quota: KeyQuota | null;
    createdBy: string | null;
    key: string;
  }): Promise<ApiKeyView & { key: string }> {
    const record = await this.keys.create({
      id: newId('key'),
      name: params.name,
      role: params.role,
      quota: params.quota,
      keyHash: hashKey(params.key),
      keyPrefix: params.key.slice(0, 12),
      createdBy: params.createdBy,
    });
    return { ...toView(record), key: params.key };
  }
}

/** 32 random bytes, base64url, with a prefix that makes leaked keys easy to grep for. */
export function generateKey(): string {
  return `kura_${randomBytes(32).toString('base64url')}`;
}

/** Keys carry 256 random bits, so a plain SHA-256 is enough to store them safely (no salt or KDF needed). */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Only the limits that are set are kept; a quota without any is no quota. */
function normalizeQuota(quota: KeyQuota | null | undefined): KeyQuota | null {
  const set = Object.fromEntries(Object.entries(quota ?? {}).filter(([, limit]) => limit != null));
  return Object.keys(set).length > 0 ? set : null;
}

function toView(key: ApiKeyRecord): ApiKeyView {
  return {
    id: key.id,
    name: key.name,
    role: key.role,
    keyPrefix: key.keyPrefix,
    createdBy: key.createdBy,
    createdAt: key.createdAt.toISOString(),
    revokedAt: key.revokedAt?.toISOString() ?? null,
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
    quota: key.quota,
  };
}
