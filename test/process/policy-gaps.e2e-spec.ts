// The built api in embedded mode (as `npm start` runs it) and the two gaps the in-process policy
// runtimes had (#14): an ONNX model that loops held the api's main thread for good, and a JS
// allocation past its isolate parked a thread so the process could never exit. In policy hosts both
// end coded, a bystander keeps answering, the api's memory comes back, and SIGINT stops it cleanly.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { tarGzOf } from '../support/archives.js';
import { repositoryRoot, startScratchApi, type KuraProcess } from '../support/processes.js';

const MiB = 1024 * 1024;

describe('policies that loop or blow their memory (embedded api process)', () => {
  let scratch: string;
  let kura: KuraProcess | undefined;
  let baseUrl: string;
  const adminKey = `kura_${'p'.repeat(43)}`;

  const call = async (method: string, path: string, body?: Buffer | object, key = adminKey) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${key}`,
        'Content-Type': Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json',
      },
      ...(body ? { body: Buffer.isBuffer(body) ? body : JSON.stringify(body) } : {}),
    });
    return {
      status: response.status,
      body: (await response.json()) as Record<string, unknown> & {
        id: string;
        status: string;
        key: string;
        errors: Array<{ code: string }>;
        action: number[];
      },
    };
  };
  const rss = async () => {
    const status = await readFile(`/proc/${kura!.child.pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+)/m.exec(status)![1]) * 1024;
  };
  const deploy = async (key: string, files: Record<string, string | Buffer>) => {
    const accepted = await call('POST', '/v1/policies?access=public', await tarGzOf(files), key);
    expect(accepted.status).toBe(202);
    for (;;) {
      const policy = await call('GET', `/v1/policies/${accepted.body.id}`, undefined, key);
      if (policy.body.status !== 'validating') return policy.body;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const manifest = (name: string, runtime: string, entry: string, action: number) =>
    JSON.stringify({
      name,
      runtime,
      entry,
      observation: ['observation.state'],
      observationShapes: { 'observation.state': [4] },
      action: { shape: [action] },
    });

  beforeAll(async () => {
    ({ scratch, kura, baseUrl } = await startScratchApi('policy-gaps', adminKey));
  }, 90_000);
  afterAll(async () => {
    if (kura && kura.child.exitCode === null) kura.child.kill('SIGKILL');
    await rm(scratch, { recursive: true, force: true });
  });

  it('a Python policy finds nothing of the data folder: not the database, other datasets’ blobs or bundles, nor any key', async () => {
    const developer = (await call('POST', '/v1/keys', { name: 'snooper', role: 'developer' })).body.key;
    const dataDir = join(scratch, 'data');
    // It counts the files of the api's data folder it can read; the jail shows it none.
    const snooper = await deploy(developer, {
      'policy.json': manifest('snooper', 'python', 'policy.py', 1),
      'policy.py': [
        'import os',
        '',
        'def act(observation, context):',
        '    found = 0',
        `    for path, _folders, files in os.walk(${JSON.stringify(dataDir)}):`,
        '        for name in files:',
        '            try:',
        '                open(os.path.join(path, name), "rb").read(16)',
        '                found += 1',
        '            except OSError:',
        '                pass',
        '    return [float(found)]',
        '',
      ].join('\n'),
    });
    expect(snooper.status).toBe('ready');
    const answer = await call('POST', `/v1/policies/${snooper.id}/act`, { observation: { 'observation.state': [0, 0, 0, 0] } });
    expect(answer.status).toBe(200);
    expect(answer.body.action).toEqual([0]);
  }, 120_000);

  it('ends both coded while a bystander answers; RSS comes back within 50 MB; SIGINT stops the api', async () => {
    const developer = (await call('POST', '/v1/keys', { name: 'developer', role: 'developer' })).body.key;
    const bystander = await deploy(developer, {
      'policy.json': manifest('bystander', 'js', 'policy.js', 1),
      'policy.js': 'function act(o) { return [o["observation.state"][0] + 1]; }',
    });
    expect(bystander.status).toBe('ready');
    const bystanderAnswers = async () => {
      const started = performance.now();
      const answer = await call('POST', `/v1/policies/${bystander.id}/act`, { observation: { 'observation.state': [1, 0, 0, 0] } });
      expect(answer.status).toBe(200);
      expect(answer.body.action).toEqual([2]);
      return performance.now() - started;
    };
    await bystanderAnswers();
    const before = await rss();

    const loop = deploy(developer, {
      'policy.json': manifest('loop', 'onnx', 'model.onnx', 4),
      'model.onnx': await readFile(join(repositoryRoot, 'packages/core/src/policies/runtimes/fixtures/loop-forever.onnx')),
    });
    const allocation = deploy(developer, {
      'policy.json': manifest('allocation', 'js', 'policy.js', 1),
      'policy.js': 'function act() { new Array(5e7).fill(0); return [0]; }',
    });
    // While both run, the api answers as usual.
    expect(await bystanderAnswers()).toBeLessThan(500);
    const [looped, allocated] = await Promise.all([loop, allocation]);
    expect(looped).toMatchObject({ status: 'rejected', errors: [expect.objectContaining({ code: 'POLICY_TIMEOUT' })] });
    expect(['POLICY_MEMORY_LIMIT', 'POLICY_TIMEOUT', 'POLICY_CRASHED']).toContain(allocated.errors[0]!.code);
    await bystanderAnswers();

    let after = await rss();
    for (let sample = 0; sample < 20 && after - before > 50 * MiB; sample++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      after = await rss();
    }
    expect(after - before).toBeLessThanOrEqual(50 * MiB);

    const started = Date.now();
    kura!.child.kill('SIGINT');
    expect(await kura!.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 120_000);
});
