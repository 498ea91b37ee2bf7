/**
 * @jest-environment ./packages/core/src/policies/runtimes/testing/node-typed-arrays-environment.mjs
 */

// Dataset terms, the ledger and edge packages (docs/ledger.md, docs/edge.md): a policy trained on two
// datasets whose owners ask different fees; its calls are split between them by the run's source
// weights, to the cent; it goes to a device only when both datasets allow it, under a signed license.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { EdgePackageError, PrismaClient, unpackEdgePackage, verifyEdgePackage } from '@kura/core';
import type { EdgeKeysView, EdgeLicense } from '@kura/schema';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { tarGzOf } from '../../../../test/support/archives.js';
import { createDataset, publish } from '../../../../test/support/datasets.js';

// The linear ONNX fixture: state [4] → action [3].
const linearModel = fileURLToPath(new URL('../../../../packages/core/src/policies/runtimes/fixtures/linear-4x3.onnx', import.meta.url));

/** Episodes of a 4-dim state and a 3-dim action, as the fixture model takes and gives them. */
function episodes(count: number): string {
  const lines: string[] = [];
  for (let episode = 0; episode < count; episode++)
    for (let step = 0; step < 5; step++)
      lines.push(
        JSON.stringify({
          episode,
          step,
          timestamp: step / 10,
          observation: { state: [episode, step, 1, -1] },
          action: [step, episode, 0.5],
          language: 'reach',
        }),
      );
  return `${lines.join('\n')}\n`;
}

/** A trainer that "trains" by leaving the fixture model and its manifest in /out: the run is about lineage, not learning. */
async function copyingTrainer(): Promise<Buffer> {
  const policyJson = JSON.stringify({
    name: 'copy-linear',
    runtime: 'onnx',
    entry: 'model.onnx',
    observation: ['observation.state'],
    action: { shape: [3] },
  });
  return tarGzOf({
    'trainer.json': JSON.stringify({
      name: 'copy-linear',
      runtime: 'python',
      entry: 'train.py',
      features: ['observation.state', 'action'],
      resources: { cpuSeconds: 30, memoryMb: 512, wallSeconds: 60 },
    }),
    'train.py': [
      'import os, shutil',
      'out = os.environ["KURA_OUT_DIR"]',
      'shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.onnx"), os.path.join(out, "model.onnx"))',
      `open(os.path.join(out, "policy.json"), "w").write(${JSON.stringify(policyJson)})`,
      '',
    ].join('\n'),
    'model.onnx': await readFile(linearModel),
  });
}

describe('dataset terms and the ledger', () => {
  let kura: TestApp;
  let prisma: PrismaClient;
  let owner: { id: string; key: string };
  let otherOwner: { id: string; key: string };
  let developer: { id: string; key: string };
  let user: { id: string; key: string };
  let datasetA: string;
  let datasetB: string;
  let policyId: string;

  const as = (key: string) => bearer(key);
  const waitFor = <T>(path: string, key: string, done: (body: Record<string, unknown>) => boolean, timeoutMs: number) =>
    eventually(async () => {
      const response = await kura.request.get(path).set(as(key));
      return done(response.body as Record<string, unknown>) ? (response.body as T) : undefined;
    }, timeoutMs);
  const setTerms = (datasetId: string, key: string, body: unknown) =>
    kura.request
      .put(`/v1/datasets/${datasetId}/terms`)
      .set(as(key))
      .send(body as object);
  // The default range is this calendar month: a run at midnight on its last day would straddle two.
  const recent = `?from=${new Date(Date.now() - 10 * 60_000).toISOString()}`;
  const earnings = (datasetId: string, key: string, query = recent) =>
    kura.request.get(`/v1/datasets/${datasetId}/earnings${query}`).set(as(key));

  beforeAll(async () => {
    kura = await startTestApp();
    prisma = kura.app.get(PrismaClient);
    owner = await kura.createKey('operator');
    otherOwner = await kura.createKey('operator');
    developer = await kura.createKey('developer');
    user = await kura.createKey('user');
    datasetA = await createDataset(kura, owner.key, 'public');
    datasetB = await createDataset(kura, otherOwner.key, 'public');
    await publish(kura, owner.key, datasetA, episodes(12));
    await publish(kura, otherOwner.key, datasetB, episodes(8));

    const accepted = await kura.request
      .post('/v1/trainers')
      .set(as(developer.key))
      .set('Content-Type', 'application/octet-stream')
      .send(await copyingTrainer());
    expect(accepted.status).toBe(202);
    const trainer = await waitFor<{ id: string; status: string }>(
      `/v1/trainers/${accepted.body.id}`,
      developer.key,
      (body) => body.status !== 'validating',
      60_000,
    );
    expect(trainer.status).toBe('ready');
    const created = await kura.request
      .post('/v1/trainings')
      .set(as(developer.key))
      .send({
        trainerId: trainer.id,
        sources: [
          { datasetId: datasetA, weight: 3 },
          { datasetId: datasetB, weight: 1 },
        ],
      });
    expect(created.status).toBe(202);
    const run = await waitFor<{ status: string; policyId: string; error: unknown }>(
      `/v1/trainings/${created.body.id}`,
      developer.key,
      (body) => ['succeeded', 'failed', 'cancelled'].includes(body.status as string),
      180_000,
    );
    if (run.status !== 'succeeded') throw new Error(`training ${run.status}: ${JSON.stringify(run.error)}`);
    policyId = run.policyId;
    await waitFor(`/v1/policies/${policyId}`, developer.key, (body) => body.status === 'ready', 60_000);
  }, 300_000);
  afterAll(async () => {
    await kura?.close();
  });

  it('shows the lineage the ledger splits by: the run’s sources and weights', async () => {
    const policy = await kura.request.get(`/v1/policies/${policyId}`).set(as(developer.key));
    expect(policy.body.trainedBy.sources).toEqual([
      { datasetId: datasetA, version: 1, weight: 3 },
      { datasetId: datasetB, version: 1, weight: 1 },
    ]);
  });

  it('lets only the owner set terms, and refuses fees that are negative, not numbers or finer than a cent', async () => {
    const refusals = await Promise.all([
      setTerms(datasetA, owner.key, { edgeExport: 'allow', feePer1000Calls: -1 }),
      setTerms(datasetA, owner.key, { edgeExport: 'allow', feePer1000Calls: 'two' }),
      setTerms(datasetA, owner.key, { edgeExport: 'allow', feePer1000Calls: '2.505' }),
      setTerms(datasetA, owner.key, { edgeExport: 'sometimes', feePer1000Calls: '2' }),
      setTerms(datasetA, otherOwner.key, { edgeExport: 'allow', feePer1000Calls: '2' }),
      kura.request.put(`/v1/datasets/${datasetA}/terms`).send({ edgeExport: 'allow', feePer1000Calls: '2' }),
    ]);
    // Where: a coded refusal's location, or the path of a schema refusal's first issue.
    const where = (body: { error?: { details?: { location?: { field?: string }; issues?: Array<{ path: string }> } } }) =>
      body.error?.details?.location?.field ?? body.error?.details?.issues?.[0]?.path;
    expect(refusals.map((reply) => [reply.status, reply.body.error?.code, where(reply.body)])).toEqual([
      [400, 'VALIDATION_FAILED', 'feePer1000Calls'],
      [400, 'VALIDATION_FAILED', 'feePer1000Calls'],
      [400, 'TERMS_FEE_INVALID', 'feePer1000Calls'],
      [400, 'VALIDATION_FAILED', 'edgeExport'],
      [403, 'FORBIDDEN', undefined],
      [401, 'AUTH_REQUIRED', undefined],
    ]);

    const a = await setTerms(datasetA, owner.key, {
      edgeExport: 'allow',
      feePer1000Calls: '2.00',
      text: 'CC-BY-4.0, 2.00 per 1,000 calls',
    });
    const b = await setTerms(datasetB, otherOwner.key, { edgeExport: 'deny', feePer1000Calls: 5 });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body).toMatchObject({
      datasetId: datasetA,
      edgeExport: 'allow',
      feePer1000Calls: '2.00',
      feeMinorPer1000: 200,
      currency: 'USD',
    });
    expect(b.body).toMatchObject({ edgeExport: 'deny', feePer1000Calls: '5.00', feeMinorPer1000: 500 });
    // Anyone who may see the dataset reads its terms.
    const read = await kura.request.get(`/v1/datasets/${datasetA}/terms`).set(as(user.key));
    expect(read.body.current).toMatchObject({ id: a.body.id, feePer1000Calls: '2.00', text: 'CC-BY-4.0, 2.00 per 1,000 calls' });
  });

  it('splits the policy’s calls between its datasets by lineage weight × fee, to the cent', async () => {
    // Real calls, metered as they happen (the meter flushes every 5 s)…
    for (let call = 0; call < 8; call++) {
      const acted = await kura.request
        .post(`/v1/policies/${policyId}/act`)
        .set(as(developer.key))
        .send({ observation: { 'observation.state': [1, 2, 3, 4] } });
      expect(acted.status).toBe(200);
    }
    const counted = await eventually(async () => {
      const reply = await earnings(datasetA, owner.key);
      return reply.body.totals?.calls === 8 ? reply.body : undefined;
    }, 20_000);
    // 8 calls × 2.00 per 1,000 × 3/4 = 1.2 cents → 1.
    expect(counted.lines).toEqual([
      expect.objectContaining({
        policyId,
        share: 0.75,
        calls: { act: 8, sessionSteps: 0, total: 8 },
        feeMinorPer1000: 200,
        amountMinor: 1,
      }),
    ]);

    // …and 992 more in the same minutes, as the usage records would hold them: 1,000 calls.
    const rows = await prisma.policyUsageCounter.findMany({ where: { policyId } });
    await prisma.policyUsageCounter.update({
      where: { policyId_keyId_bucket: { policyId, keyId: rows[0]!.keyId, bucket: rows[0]!.bucket } },
      data: { sessionSteps: { increment: 992 } },
    });
    const a = (await earnings(datasetA, owner.key)).body;
    const b = (await earnings(datasetB, otherOwner.key)).body;
    // A: 1,000 × 2.00/1,000 × 3/4 = 1.50; B: 1,000 × 5.00/1,000 × 1/4 = 1.25.
    expect(a.totals).toEqual({ calls: 1000, amountMinor: 150, amount: '1.50' });
    expect(b.totals).toEqual({ calls: 1000, amountMinor: 125, amount: '1.25' });
    expect(b.lines[0]).toMatchObject({ share: 0.25, feeMinorPer1000: 500 });

    // Calls from before a dataset had terms are counted and earn nothing.
    await prisma.policyUsageCounter.create({
      data: { policyId, keyId: user.id, bucket: new Date(Date.now() - 3_600_000 - 1), actCalls: 400, sessionSteps: 0 },
    });
    const since = new Date(Date.now() - 2 * 3_600_000).toISOString();
    const withOld = (await earnings(datasetA, owner.key, `?from=${since}`)).body;
    expect(withOld.totals).toEqual({ calls: 1400, amountMinor: 150, amount: '1.50' });
    expect(withOld.lines.find((line: { termsId: string | null }) => line.termsId === null)).toMatchObject({
      calls: { total: 400 },
      amountMinor: 0,
    });

    // The admin's ledger: both datasets, the same amounts; nobody else reads it, nor another owner's earnings.
    const ledger = await kura.request.get(`/v1/ledger${recent}`).set(as(kura.adminKey));
    expect(ledger.status).toBe(200);
    expect(ledger.body.datasets.map((row: { datasetId: string; amount: string }) => [row.datasetId, row.amount]).sort()).toEqual(
      [
        [datasetA, '1.50'],
        [datasetB, '1.25'],
      ].sort(),
    );
    expect(ledger.body.totals).toMatchObject({ amountMinor: 275, amount: '2.75' });
    expect((await kura.request.get('/v1/ledger').set(as(owner.key))).status).toBe(403);
    expect((await earnings(datasetB, owner.key)).status).toBe(403);
    expect((await earnings(datasetA, owner.key, '?from=2026-12-02&to=2026-12-01')).body.error.code).toBe('VALIDATION_FAILED');
  });

  it('exports the policy to a device only when every lineage dataset allows it, under a license a device can check', async () => {
    const expiresAt = new Date(Date.now() + 7 * 86_400_000).toISOString();
    const exportIt = (key = developer.key, body: Record<string, unknown> = { deviceId: 'arm-7', expiresAt, callQuota: 5000 }) =>
      kura.request
        .post(`/v1/policies/${policyId}/edge-exports`)
        .set(as(key))
        .send(body)
        .buffer(true)
        .parse((response, done) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => done(null, Buffer.concat(chunks)));
        });
    const errorOf = (reply: { body: Buffer }) => JSON.parse(reply.body.toString('utf8')) as { error: { code: string; details?: unknown } };

    // B's terms deny edge export: refused, naming B.
    const denied = await exportIt();
    expect(denied.status).toBe(403);
    expect(errorOf(denied).error).toMatchObject({ code: 'EDGE_EXPORT_DENIED', details: { datasets: [{ datasetId: datasetB }] } });
    expect(errorOf(await exportIt(developer.key, { deviceId: 'arm-7', expiresAt: '2020-01-01T00:00:00Z' })).error.code).toBe(
      'EDGE_EXPIRY_INVALID',
    );
    expect((await exportIt(user.key)).status).toBe(404);

    // B's owner allows it: the package comes, and checks out against the published keys.
    await setTerms(datasetB, otherOwner.key, { edgeExport: 'allow', feePer1000Calls: '5.00' });
    const made = await exportIt();
    expect(made.status).toBe(201);
    expect(made.headers['content-type']).toBe('application/x-tar');
    const exportId = made.headers['kura-edge-export-id'] as string;
    const files = await unpackEdgePackage(made.body);
    expect([...files.keys()].sort()).toEqual(['license.json', 'license.sig', 'policy.json', 'policy.tar.gz']);
    const keys = (await kura.request.get('/v1/edge/keys')).body as EdgeKeysView;
    const license: EdgeLicense = verifyEdgePackage(files, keys);
    expect(license).toMatchObject({
      exportId,
      deviceId: 'arm-7',
      callQuota: 5000,
      expiresAt,
      licensee: { keyId: developer.id },
      policy: { id: policyId, runtime: 'onnx', normalizationSha256: null },
      lineage: [
        { datasetId: datasetA, weight: 3, share: 0.75 },
        { datasetId: datasetB, weight: 1, share: 0.25 },
      ],
      terms: [
        { datasetId: datasetA, edgeExport: 'allow', feeMinorPer1000: 200, currency: 'USD' },
        { datasetId: datasetB, edgeExport: 'allow', feeMinorPer1000: 500, currency: 'USD' },
      ],
    });

    // Tampering is caught, each with its code: the model, the license, the key, the clock.
    const changed = (name: string, change: (bytes: Buffer) => Buffer) =>
      new Map([...files].map(([file, bytes]) => [file, file === name ? change(Buffer.from(bytes)) : bytes]));
    const refusal = (check: () => unknown) => {
      try {
        check();
      } catch (error) {
        if (error instanceof EdgePackageError) return error.code;
        throw error;
      }
      return 'accepted';
    };
    const flipLast = (bytes: Buffer) => {
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
      return bytes;
    };
    const moreCalls = (bytes: Buffer) => Buffer.from(bytes.toString('utf8').replace('"callQuota": 5000', '"callQuota": 5000000'));
    const { publicKey } = generateKeyPairSync('ed25519');
    const impostor: EdgeKeysView = { keys: keys.keys.map((key) => ({ ...key, x: String(publicKey.export({ format: 'jwk' }).x) })) };
    expect([
      refusal(() => verifyEdgePackage(changed('policy.tar.gz', flipLast), keys)),
      refusal(() => verifyEdgePackage(changed('license.json', moreCalls), keys)),
      refusal(() => verifyEdgePackage(files, impostor)),
      refusal(() => verifyEdgePackage(files, { keys: [] })),
      refusal(() => verifyEdgePackage(files, keys, new Date(Date.now() + 8 * 86_400_000))),
      refusal(() => verifyEdgePackage(files, keys)),
    ]).toEqual([
      'EDGE_POLICY_TAMPERED',
      'EDGE_SIGNATURE_INVALID',
      'EDGE_SIGNATURE_INVALID',
      'EDGE_KEY_UNKNOWN',
      'EDGE_LICENSE_EXPIRED',
      'accepted',
    ]);

    // Terms changed later bind later exports only: the export keeps the terms it was made under.
    await setTerms(datasetB, otherOwner.key, { edgeExport: 'deny', feePer1000Calls: '9.00' });
    expect((await exportIt()).status).toBe(403);
    const kept = await kura.request.get(`/v1/edge-exports/${exportId}`).set(as(developer.key));
    expect(kept.body.license.terms[1]).toMatchObject({ datasetId: datasetB, edgeExport: 'allow', feeMinorPer1000: 500 });

    // Rotation: a new key signs; the old one stays published while this export lives. Revocation is recorded.
    const rotated = await kura.request.post('/v1/edge/keys/rotate').set(as(kura.adminKey));
    expect(rotated.status).toBe(201);
    expect((rotated.body as EdgeKeysView).keys.map((key) => key.kid)).toContain(license.kid);
    expect((rotated.body as EdgeKeysView).keys).toHaveLength(2);
    expect(refusal(() => verifyEdgePackage(files, rotated.body as EdgeKeysView))).toBe('accepted');
    expect((await kura.request.post('/v1/edge/keys/rotate').set(as(developer.key))).status).toBe(403);
    const revoked = await kura.request.delete(`/v1/edge-exports/${exportId}`).set(as(developer.key));
    expect(revoked.body.revokedAt).toEqual(expect.any(String));
    const listed = await kura.request.get(`/v1/policies/${policyId}/edge-exports`).set(as(developer.key));
    expect(listed.body.items.map((item: { id: string; revokedAt: string | null }) => [item.id, item.revokedAt !== null])).toEqual([
      [exportId, true],
    ]);
  });
});
