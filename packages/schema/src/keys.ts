import { z } from 'zod';

export const roles = ['admin', 'operator', 'developer', 'user'] as const;
/** What a key may do: admin (everything), operator (robots, datasets, uploads), developer (read data, slices, policies), user (inference). */
export const roleSchema = z.enum(roles);
export type Role = z.infer<typeof roleSchema>;

const limit = z.number().int().min(0).max(1_000_000_000).nullable().optional();

/**
 * Limits on a key's inference use; an absent or null limit means none. `actPerMinute` counts every
 * policy call (act and session steps) in a clock minute; `stepsPerDay` counts session steps (the
 * recorded ones) in a UTC day.
 */
export const keyQuotaSchema = z.strictObject({ actPerMinute: limit, stepsPerDay: limit });
export type KeyQuota = z.infer<typeof keyQuotaSchema>;

export const createKeyRequestSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  role: roleSchema,
  quota: keyQuotaSchema.nullable().optional(),
});
export type CreateKeyRequest = z.infer<typeof createKeyRequestSchema>;

/** `PATCH /v1/keys/:id`: what may change on an existing key (its role and hash never do). */
export const updateKeyRequestSchema = z.strictObject({
  name: z.string().trim().min(1).max(200).optional(),
  quota: keyQuotaSchema.nullable().optional(),
});
export type UpdateKeyRequest = z.infer<typeof updateKeyRequestSchema>;

/** An API key as listed: never the key itself. */
export interface ApiKeyView {
  id: string;
  name: string;
  role: Role;
  keyPrefix: string;
  createdBy: string | null;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
  /** Inference limits; null when the key has none. */
  quota: KeyQuota | null;
}
