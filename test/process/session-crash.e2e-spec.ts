// SIGKILL the api while a robot streams session steps: every step it acknowledged (200) must be there
// after the restart, and the session must still end into an episode holding them.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pack } from 'tar-stream';
import { freePort } from '@kura/core';
import { createTestDatabase } from '../support/database.js';
import { startKuraProcess, waitForHealthy, type KuraProcess } from '../support/processes.js';

async function bundle(): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<void>((resolve) => archive.on('end', resolve));
  archive.entry(
    { name: 'policy.json' },
    JSON.stringify({ name: 'steady', runtime: 'js', entry: 'policy.js', observation: ['observation.state'], action: { shape: [1] } }),
  );
  archive.entry({ name: 'policy.js' }, 'function act(o) { return [o["observation.state"][0] + 1]; }');
  archive.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

describe('crash safety of session steps (SIGKILL of the api)', () => {
  let scratch: string;
  let database: { url: string; drop: () => Promise<void> };
  let baseUrl: string;
  let port: number;
  let kura: KuraProcess | undefined;
  const adminKey = `kura_${'s'.repeat(43)}`;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kura-session-crash-'));
    await chmod(scratch, 0o755);
    database = await createTestDatabase();
    port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    if (kura && kura.child.exitCode === null) {
      kura.child.kill('SIGINT');
      await kura.exited;
    }
    await database.drop();
    await rm(scratch, { recursive: true, force: true });
  });

  const start = async () => {
    kura = startKuraProcess('api', {
      KURA_DATA_DIR: join(scratch, 'data'),
      DATABASE_URL: database.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      KURA_ADMIN_KEY: adminKey,
    });
    await waitForHealthy(baseUrl, kura);
  };
  const api = async (path: string, body?: unknown, contentType = 'application/json') => {
    const response = await fetch(`${baseUrl}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { Authorization: `Bearer ${adminKey}`, 'Content-Type': contentType },
      ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const until = async <T>(check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  it('keeps every acknowledged step through a SIGKILL', async () => {
    await start();
    const robot = await api('/v1/robots', { name: 'arm', robotType: 'arm', controlFrequencyHz: 10, actionSpace: 'joint_position' });
    const dataset = await api('/v1/datasets', { name: 'sessions', robotId: robot.body.id, access: 'private' });
    const policy = await api('/v1/policies?access=public', await bundle(), 'application/octet-stream');
    await until(async () => ((await api(`/v1/policies/${String(policy.body.id)}`)).body.status === 'ready' ? true : undefined));
    const session = await api('/v1/sessions', { policyId: policy.body.id, datasetId: dataset.body.id });
    const sessionId = String(session.body.id);

    // Steps as fast as the api takes them; the kill lands while one is in flight.
    const acknowledged: number[] = [];
    const streaming = (async () => {
      for (let index = 0; ; index++) {
        try {
          const reply = await api(`/v1/sessions/${sessionId}/steps`, { observation: { 'observation.state': [index] } });
          if (reply.status !== 200) return;
          acknowledged.push(reply.body.stepIndex as number);
        } catch {
          return;
        }
      }
    })();
    await until(async () => (acknowledged.length >= 20 ? true : undefined));
    kura!.child.kill('SIGKILL');
    await kura!.exited;
    await streaming;

    await start();
    const after = await api(`/v1/sessions/${sessionId}`);
    expect(after.body.status).toBe('open');
    // Every acknowledged step is there (one more may be, if the kill came after its write but before its reply).
    expect(after.body.stepCount).toBeGreaterThanOrEqual(acknowledged.length);
    expect(after.body.stepCount).toBeLessThanOrEqual(acknowledged.length + 1);
    expect(acknowledged).toEqual(Array.from({ length: acknowledged.length }, (_, index) => index));

    const ended = await api(`/v1/sessions/${sessionId}/end`, {});
    const upload = await until(async () => {
      const reply = await api(`/v1/uploads/${String(ended.body.uploadId)}`);
      return ['published', 'failed'].includes(reply.body.status as string) ? reply.body : undefined;
    });
    expect(upload).toMatchObject({ status: 'published', stepCount: after.body.stepCount });
  }, 120_000);
});
