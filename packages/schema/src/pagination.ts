import { z } from 'zod';

/** `?limit=&cursor=` on every list endpoint. */
export const listQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().min(1).max(500).optional(),
});
export type ListQuery = z.infer<typeof listQuerySchema>;

/** One page of a list. `nextCursor` is null on the last page. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
