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
