import { z } from 'zod';

/** Feature → numbers (nested arrays allowed) or the base64 of an encoded image. */
const observationSchema = z.record(z.string().min(1).max(200), z.unknown());

/** `POST /v1/policies/:id/act` body. */
export const actRequestSchema = z.strictObject({
  observation: observationSchema,
  task: z.string().max(10_000).optional(),
});
export type ActRequest = z.infer<typeof actRequestSchema>;

/** `POST /v1/sessions` body: a ready policy, and the dataset its steps are recorded into. */
export const createSessionRequestSchema = z.strictObject({
  policyId: z.string().min(1).max(100),
  datasetId: z.string().min(1).max(100),
  task: z.string().min(1).max(10_000).optional(),
});
export type CreateSessionRequest = z.infer<typeof createSessionRequestSchema>;

/** `POST /v1/sessions/:id/steps` body. */
export const sessionStepRequestSchema = z.strictObject({
  observation: observationSchema,
  reward: z.number().finite().optional(),
  /**
   * The index this step is to get (0 for the first). With it a step can be sent again safely: a
   * repeat of a recorded step replies with the recorded action (`replayed: true`).
   */
  stepIndex: z.number().int().min(0).optional(),
});
export type SessionStepRequest = z.infer<typeof sessionStepRequestSchema>;

/** `POST /v1/sessions/:id/end` body. */
export const endSessionRequestSchema = z.strictObject({ success: z.boolean().optional() });
export type EndSessionRequest = z.infer<typeof endSessionRequestSchema>;

export type SessionStatus = 'open' | 'ended' | 'truncated';

export interface SessionView {
  id: string;
  policyId: string;
  datasetId: string;
  task: string | null;
  status: SessionStatus;
  stepCount: number;
  success: boolean | null;
  uploadId: string | null;
  createdAt: string;
  endedAt: string | null;
}
