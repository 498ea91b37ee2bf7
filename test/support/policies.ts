import { PrismaClient, validatePolicyJobId } from '@kura/core';
import { tarGzOf } from './archives.js';
import { bearer, eventually, type TestApp } from './app.js';

/**
 * Uploads a policy bundle (its files by path) as `key` and waits for validation; throws, with the
 * validation errors, unless the policy ends ready. Returns the policy id.
 */
export async function deployPolicy(
  kura: TestApp,
  key: string,
  files: Record<string, string | Buffer>,
  access: 'public' | 'private' = 'public',
): Promise<string> {
  const accepted = await kura.request
    .post(`/v1/policies?access=${access}`)
    .set(bearer(key))
    .set('Content-Type', 'application/octet-stream')
    .send(await tarGzOf(files));
  if (accepted.status !== 202) throw new Error(`policy upload: ${accepted.status} ${JSON.stringify(accepted.body)}`);
  const policy = await eventually(async () => {
    const response = await kura.request.get(`/v1/policies/${accepted.body.id}`).set(bearer(key));
    return response.body.status === 'validating' ? undefined : (response.body as { id: string; status: string; errors: unknown[] });
  }, 30_000);
  if (policy.status !== 'ready') throw new Error(`policy ${policy.id} was ${policy.status}: ${JSON.stringify(policy.errors)}`);
  return policy.id;
}

/** A policy as GET /v1/policies/:id answers, once validation has ended. */
export interface SettledPolicy {
  id: string;
  status: 'ready' | 'rejected';
  errors: Array<{ code: string; message: string; location?: { file?: string; field?: string } }>;
}

/**
 * Uploads a bundle (already packed) as `key` and waits, at most `timeoutMs`, for its validation to
 * end, whatever the outcome; throws if it is still `validating` then. Also returns how many attempts
 * the validation job took and the milliseconds from upload to the outcome.
 */
export async function uploadPolicyUntilSettled(
  kura: TestApp,
  key: string,
  bundle: Buffer,
  timeoutMs = 30_000,
): Promise<{ policy: SettledPolicy; attempts: number; ms: number }> {
  const started = Date.now();
  const accepted = await kura.request
    .post('/v1/policies?access=private')
    .set(bearer(key))
    .set('Content-Type', 'application/octet-stream')
    .send(bundle);
  if (accepted.status !== 202) throw new Error(`policy upload: ${accepted.status} ${JSON.stringify(accepted.body)}`);
  const id = accepted.body.id as string;
  const policy = await eventually(async () => {
    const response = await kura.request.get(`/v1/policies/${id}`).set(bearer(key));
    return response.body.status === 'validating' ? undefined : (response.body as SettledPolicy);
  }, timeoutMs);
  const ms = Date.now() - started;
  const job = await eventually(
    async () =>
      (await kura.app
        .get(PrismaClient)
        .job.findUnique({ where: { id: validatePolicyJobId(id) }, select: { attempts: true, state: true } })) ?? undefined,
  );
  return { policy, attempts: job.attempts, ms };
}
