import { z } from 'zod';

export const roles = ['admin', 'operator', 'developer', 'user'] as const;
/** What a key may do: admin (everything), operator (robots, datasets, uploads), developer (read data, slices, policies), user (inference). */
export const roleSchema = z.enum(roles);
export type Role = z.infer<typeof roleSchema>;

export const createKeyRequestSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  role: roleSchema,
});
export type CreateKeyRequest = z.infer<typeof createKeyRequestSchema>;
