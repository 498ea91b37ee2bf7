import { z } from 'zod';

/** `GET /v1/usage` query: the time range (the last 30 days by default) and, for admins, another key. */
export const usageQuerySchema = z.strictObject({
  from: z.coerce.date().optional(),
  to: z.coerce.date().optional(),
  keyId: z.string().min(1).max(100).optional(),
});
export type UsageQuery = z.infer<typeof usageQuerySchema>;

/** One key's metered use over the range. */
export interface UsageView {
  keyId: string;
  actCalls: number;
  sessionSteps: number;
  inferenceMs: number;
  bytesServed: number;
}
