import { z } from 'zod';

/** Where in an upload or request something was wrong. Every field is optional. */
export const errorLocationSchema = z.object({
  file: z.string().optional(),
  episode: z.union([z.number(), z.string()]).optional(),
  step: z.number().optional(),
  field: z.string().optional(),
  line: z.number().optional(),
});
export type ErrorLocation = z.infer<typeof errorLocationSchema>;

/** The body of every non-2xx reply. */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** A problem found in uploaded data: what, and where (an upload's `errors` and `warnings`). */
export interface ImportIssue {
  code: string;
  message: string;
  location: ErrorLocation;
  /** Facts a program may want beyond the message (e.g. FORMAT_UNKNOWN's container and the layouts tried), JSON-serialisable. */
  details?: Record<string, unknown>;
}
