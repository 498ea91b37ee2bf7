/**
 * @jest-environment ./packages/core/src/policies/runtimes/testing/node-typed-arrays-environment.mjs
 */
// Policy validation always ends, on its first attempt, with a code (#19): a manifest whose shapes
// would size a huge synthetic observation (`[1000000, 1000000]` used to stay `validating` forever),
// an action shape bomb, a model whose own input is huge, an error the validator did not expect, and
// a validation past its wall-clock budget.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { PoliciesRepository } from '../../../../packages/core/src/policies/policies.repository.js';
import { PolicyValidationService } from '../../../../packages/core/src/policies/policy-validation.service.js';
import { bearer, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { tarGzOf } from '../../../../test/support/archives.js';
import { uploadPolicyUntilSettled } from '../../../../test/support/policies.js';

const answerTwo = 'function act() { return [0, 0]; }';

/** A JS bundle; `manifest` overrides fields of a valid policy.json, or replaces it when a string. */
const jsBundle = (manifest: Record<string, unknown> | string = {}, script = answerTwo) =>
  tarGzOf({
    'policy.json':
      typeof manifest === 'string'
        ? manifest
        : JSON.stringify({
            name: 'bounded',
            runtime: 'js',
            entry: 'policy.js',
            observation: ['observation.state'],
            action: { shape: [2] },
            ...manifest,
          }),
    'policy.js': script,
  });

describe('policy validation always ends with a code', () => {
  let kura: TestApp;
  let developer: { id: string; key: string };

  beforeAll(async () => {
    kura = await startTestApp();
    developer = await kura.createKey('developer');
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  const settle = (bundle: Buffer) => uploadPolicyUntilSettled(kura, developer.key, bundle, 20_000);

  it('observationShapes [1000000, 1000000] → MANIFEST_INVALID naming the field, on the first attempt, within seconds', async () => {
    const { policy, attempts, ms } = await settle(await jsBundle({ observationShapes: { 'observation.state': [1_000_000, 1_000_000] } }));
    expect(policy).toMatchObject({
      status: 'rejected',
      errors: [{ code: 'MANIFEST_INVALID', location: { file: 'policy.json', field: 'observationShapes.observation.state' } }],
    });
    expect(policy.errors[0]!.message).toContain('4194304');
    expect(attempts).toBe(1);
    expect(ms).toBeLessThan(10_000);
  });

  it.each([
    ['rank 9', 'observationShapes.observation.state', { 'observation.state': [1, 1, 1, 1, 1, 1, 1, 1, 1] }],
    ['a zero dimension', 'observationShapes.observation.state.0', { 'observation.state': [0] }],
    ['a negative dimension', 'observationShapes.observation.state.0', { 'observation.state': [-7] }],
    ['a fractional dimension', 'observationShapes.observation.state.0', { 'observation.state': [1.5] }],
    ['a dimension as text', 'observationShapes.observation.state.0', { 'observation.state': ['7'] }],
    ['a rank-0 shape', 'observationShapes.observation.state', { 'observation.state': [] }],
    ['a feature the observation does not list', 'observationShapes.observation.elsewhere', { 'observation.elsewhere': [7] }],
  ])('observationShapes with %s → MANIFEST_INVALID at %s', async (_name, field, observationShapes) => {
    const { policy, attempts } = await settle(await jsBundle({ observationShapes }));
    expect(policy).toMatchObject({ status: 'rejected', errors: [{ code: 'MANIFEST_INVALID', location: { field } }] });
    expect(attempts).toBe(1);
  });

  it('features that are each within bounds but too many numbers together → MANIFEST_INVALID at observationShapes', async () => {
    // Three features of 2048 × 2048 = 4,194,304 numbers each: 12.6 million in all, over 8,388,608.
    const observation = ['observation.a', 'observation.b', 'observation.c'];
    const observationShapes = Object.fromEntries(observation.map((name) => [name, [2048, 2048]]));
    const { policy, attempts } = await settle(await jsBundle({ observation, observationShapes }));
    expect(policy).toMatchObject({ status: 'rejected', errors: [{ code: 'MANIFEST_INVALID', location: { field: 'observationShapes' } }] });
    expect(policy.errors[0]!.message).toContain('8388608');
    expect(attempts).toBe(1);
  });

  it('NaN in observationShapes (not JSON) → MANIFEST_INVALID at policy.json', async () => {
    const manifest = `{"name":"nan","runtime":"js","entry":"policy.js","observation":["observation.state"],"observationShapes":{"observation.state":[NaN]},"action":{"shape":[2]}}`;
    const { policy, attempts } = await settle(await jsBundle(manifest));
    expect(policy).toMatchObject({ status: 'rejected', errors: [{ code: 'MANIFEST_INVALID', location: { file: 'policy.json' } }] });
    expect(attempts).toBe(1);
  });

  it.each([
    ['[1024, 4096] (4 million numbers per call)', [1024, 4096]],
    ['[256, 512]', [256, 512]],
    ['[1e9]', [1e9]],
  ])('an action shape bomb %s → MANIFEST_INVALID at action.shape', async (_name, shape) => {
    const { policy, attempts } = await settle(await jsBundle({ action: { shape } }));
    expect(policy.status).toBe('rejected');
    expect(policy.errors[0]).toMatchObject({ code: 'MANIFEST_INVALID', location: { field: expect.stringMatching(/^action\.shape/) } });
    expect(attempts).toBe(1);
  });

  it('a policy.json over 1 MiB (say, inline statistics of millions of numbers) → MANIFEST_INVALID before it is parsed', async () => {
    // Random digits, so the bundle's gzip ratio stays far from the bomb limit: about 2.3 MB of JSON.
    const mean = Array.from({ length: 60_000 }, () => Math.random());
    const { policy, attempts } = await settle(
      await jsBundle({ normalization: { mode: 'zscore', stats: { 'observation.state': { mean, std: mean } } } }),
    );
    expect(policy).toMatchObject({ status: 'rejected', errors: [{ code: 'MANIFEST_INVALID', location: { file: 'policy.json' } }] });
    expect(policy.errors[0]!.message).toContain('1048576');
    expect(attempts).toBe(1);
  });

  it('text Postgres cannot store in the manifest → MANIFEST_INVALID naming the field', async () => {
    const { policy, attempts } = await settle(await jsBundle({ description: 'a\u0000b' }));
    expect(policy).toMatchObject({ status: 'rejected', errors: [{ code: 'MANIFEST_INVALID', location: { field: 'description' } }] });
    expect(attempts).toBe(1);
  });

  it('an ONNX model whose own input is [1, 100000, 100000] → POLICY_OBSERVATION_TOO_LARGE before any allocation', async () => {
    const model = await readFile(new URL('../../../../packages/core/src/policies/runtimes/fixtures/huge-input.onnx', import.meta.url));
    const bundle = await tarGzOf({
      'policy.json': JSON.stringify({
        name: 'huge-input',
        runtime: 'onnx',
        entry: 'model.onnx',
        observation: ['observation.state'],
        action: { shape: [1] },
      }),
      'model.onnx': model,
    });
    const { policy, attempts } = await settle(bundle);
    expect(policy).toMatchObject({
      status: 'rejected',
      errors: [{ code: 'POLICY_OBSERVATION_TOO_LARGE', location: { file: 'model.onnx' } }],
    });
    expect(policy.errors[0]!.message).toContain('[1, 100000, 100000]');
    expect(attempts).toBe(1);
  });

  // The policy's error message reaches the database as it is: a NUL or a lone surrogate in it used to
  // make recording the rejection fail, so the job retried and the policy stayed `validating`.
  it.each([
    ['a NUL', 'throw new Error("bad \\u0000 byte")'],
    ['a lone surrogate', 'throw new Error("bad \\ud800 half")'],
  ])('a policy whose error message holds %s → rejected POLICY_THREW on the first attempt', async (_name, body) => {
    const { policy, attempts } = await settle(await jsBundle({}, `function act() { ${body}; }`));
    expect(policy).toMatchObject({ status: 'rejected', errors: [{ code: 'POLICY_THREW' }] });
    expect(policy.errors[0]!.message).toContain('\uFFFD');
    expect(attempts).toBe(1);
    expect((await kura.request.get('/health')).status).toBe(200);
  });

  // Only Kura's own storage failing is worth a retry — and the last attempt still ends the validation.
  it('a bundle the blob store cannot give back is retried, then rejected POLICY_VALIDATION_FAILED on the last attempt', async () => {
    const id = `pol_lostbundle${Date.now()}`;
    await kura.app.get(PoliciesRepository).create({
      id,
      ownerKeyId: developer.id,
      access: 'private',
      runtime: 'unknown',
      bundleKey: `policies/${id}/bundle`,
      bytes: 1n,
      sha256: '0'.repeat(64),
    });
    const validation = kura.app.get(PolicyValidationService);
    const status = async () => (await kura.request.get(`/v1/policies/${id}`).set(bearer(developer.key))).body;
    await expect(validation.validate(id, { attempt: 1, maxAttempts: 2 })).rejects.toThrow('reading the bundle from the blob store');
    expect(await status()).toMatchObject({ status: 'validating' });
    await validation.validate(id, { attempt: 2, maxAttempts: 2 });
    const policy = await status();
    expect(policy).toMatchObject({ status: 'rejected', errors: [{ code: 'POLICY_VALIDATION_FAILED' }] });
    expect(policy.errors[0].message).toContain('after 2 attempts');
  });

  it('a valid policy is still ready', async () => {
    const { policy } = await settle(await jsBundle({ observationShapes: { 'observation.state': [3, 4] } }));
    expect(policy).toMatchObject({ status: 'ready', errors: [] });
  });
});

describe('a validation past KURA_POLICY_VALIDATION_TIMEOUT_S', () => {
  let kura: TestApp;
  let developer: { id: string; key: string };

  beforeAll(async () => {
    // 2 s: the policy's host process must start within it too (~0.25 s, more on a busy machine).
    kura = await startTestApp({ KURA_POLICY_VALIDATION_TIMEOUT_S: '2', KURA_POLICY_CALL_TIMEOUT_MS: '1000' });
    developer = await kura.createKey('developer');
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  it('is rejected POLICY_VALIDATION_TIMEOUT on its first attempt, and the next policy validates', async () => {
    // Each part stays inside its own sandbox limit (the top level, reset() and act() get 1 s each),
    // but together they take longer than the whole validation may.
    const busy = 'const until = Date.now() + 800; while (Date.now() < until) {}';
    const script = `${busy}\nfunction reset() { ${busy} }\nfunction act() { ${busy} return [0, 0]; }`;
    const slow = await uploadPolicyUntilSettled(kura, developer.key, await jsBundle({}, script), 20_000);
    expect(slow.policy).toMatchObject({ status: 'rejected', errors: [{ code: 'POLICY_VALIDATION_TIMEOUT' }] });
    expect(slow.policy.errors[0]!.message).toContain('KURA_POLICY_VALIDATION_TIMEOUT_S');
    expect(slow.attempts).toBe(1);
    // The version the manifest gave is kept, as for any other rejection of a readable manifest.
    const detail = await kura.request.get(`/v1/policies/${slow.policy.id}`).set(bearer(developer.key));
    expect(detail.body).toMatchObject({ name: 'bounded', version: 1 });

    const next = await uploadPolicyUntilSettled(kura, developer.key, await jsBundle({ name: 'quick' }), 20_000);
    // With its errors: a full suite on 2 busy cores once timed the quick policy out too (2 s for the whole validation).
    expect({ status: next.policy.status, errors: next.policy.errors }).toEqual({ status: 'ready', errors: [] });
  });
});
