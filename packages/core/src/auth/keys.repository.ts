import { Inject, Injectable } from '@nestjs/common';
import { keyQuotaSchema, type KeyQuota, type Role } from '@kura/schema';
import { Prisma, PrismaClient } from '../database/prisma.js';

/** The channel on which a key change (revoked, new quota) is announced to every process; the payload is the key id. */
export const KEY_CHANGES_CHANNEL = 'kura_key_changes';

const keySelect = {
  id: true,
  name: true,
  role: true,
  keyPrefix: true,
  createdBy: true,
  createdAt: true,
  revokedAt: true,
  lastUsedAt: true,
  quota: true,
} as const;

export interface ApiKeyRecord {
  id: string;
  name: string;
  role: Role;
  keyPrefix: string;
  createdBy: string | null;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  quota: KeyQuota | null;
}

type KeyRow = Omit<ApiKeyRecord, 'quota'> & { quota: unknown };

/** Quotas are JSON in the row; only what the schema accepted was ever written. */
function toRecord(row: KeyRow): ApiKeyRecord;
function toRecord(row: KeyRow | null): ApiKeyRecord | null;
function toRecord(row: KeyRow | null): ApiKeyRecord | null {
  if (!row) return null;
  return { ...row, quota: row.quota == null ? null : keyQuotaSchema.parse(row.quota) };
}

@Injectable()
export class KeysRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  create(data: {
    id: string;
    name: string;
    role: Role;
    keyHash: string;
    keyPrefix: string;
    createdBy: string | null;
    quota: KeyQuota | null;
  }): Promise<ApiKeyRecord> {
    const { quota, ...rest } = data;
    return this.prisma.apiKey.create({ data: { ...rest, quota: quota ?? Prisma.DbNull }, select: keySelect }).then((row) => toRecord(row));
  }

  async findActiveByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    return toRecord(await this.prisma.apiKey.findFirst({ where: { keyHash, revokedAt: null }, select: keySelect }));
  }

  async findByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    return toRecord(await this.prisma.apiKey.findUnique({ where: { keyHash }, select: keySelect }));
  }

  async findById(id: string): Promise<ApiKeyRecord | null> {
    return toRecord(await this.prisma.apiKey.findUnique({ where: { id }, select: keySelect }));
  }

  async list(params: { afterId: string | undefined; take: number }): Promise<ApiKeyRecord[]> {
    const rows = await this.prisma.apiKey.findMany({
      where: params.afterId ? { id: { gt: params.afterId } } : {},
      orderBy: { id: 'asc' },
      take: params.take,
      select: keySelect,
    });
    return rows.map((row) => toRecord(row));
  }

  /** Changes a key's name and/or quota (`null` removes the quota); null when there is no such key. */
  async update(id: string, changes: { name?: string | undefined; quota?: KeyQuota | null | undefined }): Promise<ApiKeyRecord | null> {
    const data = {
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.quota !== undefined ? { quota: changes.quota ?? Prisma.DbNull } : {}),
    };
    const updated = await this.prisma.$transaction(async (transaction) => {
      const result = await transaction.apiKey.updateMany({ where: { id }, data });
      // Delivered at commit to every process caching keys.
      await transaction.$executeRaw`SELECT pg_notify(${KEY_CHANGES_CHANNEL}, ${id})`;
      return result;
    });
    return updated.count === 0 ? null : this.findById(id);
  }

  /** Revokes unless it is the last active admin key; both checked in one transaction. */
  async revoke(id: string): Promise<'revoked' | 'already-revoked' | 'last-admin' | 'not-found'> {
    return this.prisma.$transaction(async (transaction) => {
      // Serialise revocations so two admins cannot revoke each other's last keys at once.
      await transaction.$executeRaw`SELECT pg_advisory_xact_lock(4242001)`;
      const key = await transaction.apiKey.findUnique({ where: { id }, select: { role: true, revokedAt: true } });
      if (!key) return 'not-found';
      if (key.revokedAt) return 'already-revoked';
      if (key.role === 'admin') {
        const activeAdmins = await transaction.apiKey.count({ where: { role: 'admin', revokedAt: null } });
        if (activeAdmins <= 1) return 'last-admin';
      }
      await transaction.apiKey.update({ where: { id }, data: { revokedAt: new Date() } });
      await transaction.$executeRaw`SELECT pg_notify(${KEY_CHANGES_CHANNEL}, ${id})`;
      return 'revoked';
    });
  }

  async touch(id: string, at: Date): Promise<void> {
    await this.prisma.apiKey.update({ where: { id }, data: { lastUsedAt: at }, select: { id: true } });
  }

  countActiveAdmins(): Promise<number> {
    return this.prisma.apiKey.count({ where: { role: 'admin', revokedAt: null } });
  }

  /** Runs `work` while holding a database-wide lock, so concurrent starts bootstrap one admin key. */
  withBootstrapLock<T>(work: () => Promise<T>): Promise<T> {
    return this.prisma.$transaction(
      async (transaction) => {
        await transaction.$executeRaw`SELECT pg_advisory_xact_lock(4242002)`;
        return work();
      },
      { timeout: 30_000 },
    );
  }
}
