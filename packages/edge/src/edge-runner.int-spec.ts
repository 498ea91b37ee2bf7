/**
 * @jest-environment ./packages/core/src/policies/runtimes/testing/node-typed-arrays-environment.mjs
 */
// The runner on packages signed here (a key of the test's own): JS and Python policies in the same
// jailed hosts as the server's, and the checks each call makes against a clock the test moves.
// Runs the built host (packages/core/dist): `npm test` builds first.
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { EDGE_LICENSE_FORMAT, type EdgeKeysView, type EdgeLicense } from '@kura/schema';
import { sha256 } from '@kura/core/edge-runtime';
import { tarGzOf } from '../../../test/support/archives.js';
import { EdgeRunner } from './edge-runner.js';
import { packEdgePackage, UsageLog } from './index.js';

const repository = fileURLToPath(new URL('../../../', import.meta.url));
const counterNumpy = join(repository, 'test/fixtures/python-policies/counter-numpy');
const HOUR = 3_600_000;
const t0 = Date.UTC(2026, 11, 7, 12, 0, 0);

const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const keys: EdgeKeysView = {
  keys: [{ kty: 'OKP', crv: 'Ed25519', x: String(publicKey.export({ format: 'jwk' }).x), kid: 'test-key', use: 'sig', alg: 'EdDSA' }],
};

/** A package of `bundle`, licensed to `arm-1` until t0 + 2 h, signed by the test's key. */
async function makePackage(path: string, bundle: Buffer, exportId: string, callQuota: number | null): Promise<void> {
  const manifest = JSON.parse(await readFile(join(counterNumpy, 'policy.json'), 'utf8')) as Record<string, unknown>;
  const license: EdgeLicense = {
    format: EDGE_LICENSE_FORMAT,
    exportId,
    kid: 'test-key',
    issuedAt: new Date(t0).toISOString(),
    expiresAt: new Date(t0 + 2 * HOUR).toISOString(),
    licensee: { keyId: 'key_test' },
    deviceId: 'arm-1',
    callQuota,
    policy: { id: 'pol_test', name: 'p', version: 1, runtime: String(manifest.runtime), sha256: sha256(bundle), normalizationSha256: null },
    lineage: [],
    terms: [],
  };
  const licenseBytes = Buffer.from(JSON.stringify(license));
  await writeFile(
    path,
    await packEdgePackage(
      [
        ['license.json', licenseBytes],
        ['license.sig', Buffer.from(sign(null, licenseBytes, privateKey).toString('base64url'))],
        ['policy.json', Buffer.from('{}')],
        ['policy.tar.gz', bundle],
      ],
      new Date(t0),
    ),
  );
}

describe('the edge runner', () => {
  let work: string;
  let now = t0;
  const clock = () => new Date(now);
  const open = (packagePath: string) =>
    EdgeRunner.open({ packagePath, keys, deviceId: 'arm-1', stateDir: join(work, 'state'), now: clock, windowMs: 60_000 });
  const codeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'answered',
      (error: Error & { code?: string }) => error.code ?? error.message,
    );

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'kura-edge-runner-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('runs a Python policy as the server does (state kept between calls, reset), counting each answered call', async () => {
    const bundle = await tarGzOf({
      'policy.json': await readFile(join(counterNumpy, 'policy.json')),
      'policy.py': await readFile(join(counterNumpy, 'policy.py')),
    });
    const packagePath = join(work, 'python.tar');
    await makePackage(packagePath, bundle, 'edx_python', null);
    now = t0;
    const runner = await open(packagePath);
    try {
      const expected = JSON.parse(await readFile(join(counterNumpy, 'expected.json'), 'utf8')) as {
        cases: Array<{ resetBefore: boolean; observation: Record<string, number[]>; action: number[] }>;
      };
      for (const [index, step] of expected.cases.entries()) {
        if (step.resetBefore) await runner.reset();
        now = t0 + index * 1000;
        expect((await runner.act(step.observation)).action).toEqual(step.action);
      }
      // A refused observation is not a call.
      expect(await codeOf(runner.act({ 'observation.state': [1] }))).toBe('OBSERVATION_INVALID');
      expect(runner.calls).toBe(expected.cases.length);
    } finally {
      await runner.close();
    }
    const log = await UsageLog.read(join(work, 'state'), 'edx_python');
    expect(log.after(0).map((record) => [record.calls, record.from, record.to])).toEqual([
      [5, new Date(t0).toISOString(), new Date(t0 + 4000).toISOString()],
    ]);
  }, 120_000);

  it('writes a window per minute, and refuses a clock set back, a spent quota and an expired license mid-run', async () => {
    const bundle = await tarGzOf({
      'policy.json': JSON.stringify({
        name: 'double',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state'],
        observationShapes: { 'observation.state': [2] },
        action: { shape: [2] },
      }),
      'policy.js': 'function act(o) { const s = o["observation.state"]; return [2 * s[0], 2 * s[1]]; }',
    });
    const packagePath = join(work, 'js.tar');
    await makePackage(packagePath, bundle, 'edx_js', 4);
    const observation = { 'observation.state': [1, 2] };
    now = t0;
    const runner = await open(packagePath);
    try {
      expect((await runner.act(observation)).action).toEqual([2, 4]);
      now = t0 + 30_000;
      await runner.act(observation);
      // A minute after the window opened: the next call writes it first.
      now = t0 + 61_000;
      await runner.act(observation);
      expect((await UsageLog.read(join(work, 'state'), 'edx_js')).after(0).map((record) => record.calls)).toEqual([2]);
      now = t0 + 50_000;
      expect(await codeOf(runner.act(observation))).toBe('EDGE_CLOCK_BACKWARDS');
      now = t0 + 62_000;
      await runner.act(observation);
      expect(await codeOf(runner.act(observation))).toBe('EDGE_QUOTA_EXCEEDED');
      now = t0 + 3 * HOUR;
      expect(await codeOf(runner.act(observation))).toBe('EDGE_LICENSE_EXPIRED');
      expect(runner.calls).toBe(4);
    } finally {
      await runner.close();
    }
    const records = (await UsageLog.read(join(work, 'state'), 'edx_js')).after(0);
    expect(records.map((record) => record.calls)).toEqual([2, 2]);
    // Opened again with the quota spent: refused before the policy loads.
    now = t0 + HOUR;
    expect(await codeOf(open(packagePath))).toBe('EDGE_QUOTA_EXCEEDED');
  }, 120_000);
});
