/**
 * @jest-environment ./packages/core/src/policies/runtimes/testing/node-typed-arrays-environment.mjs
 */

// Dataset terms, the ledger and edge packages (docs/ledger.md, docs/edge.md): a policy trained on two
// datasets whose owners ask different fees; its calls are split between them by the run's source
// weights, to the cent; it goes to a device only when both datasets allow it, under a signed license.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Packr, Unpackr } from 'msgpackr';
import { WebSocket } from 'ws';
import { EdgeRunner, UsageLog } from '@kura/edge';
import { EdgePackageError, genesisHash, packEdgePackage, PrismaClient, sealRecord, unpackEdgePackage, verifyEdgePackage } from '@kura/core';
import type { EdgeKeysView, EdgeLicense, EdgeUsageRecord } from '@kura/schema';
import { kuraBin, runKura } from '../../../../test/support/cli.js';
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
        calls: { act: 8, sessionSteps: 0, edge: 0, total: 8 },
        exportId: null,
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
  it('runs the package offline with kura edge run and serve, reports its log, and the ledger splits the edge calls by the license’s terms', async () => {
    await kura.app.listen(0, '127.0.0.1');
    const url = `http://127.0.0.1:${(kura.app.getHttpServer().address() as AddressInfo).port}`;
    const work = await mkdtemp(join(tmpdir(), 'kura-edge-e2e-'));
    const state = join(work, 'state');
    const packagePath = join(work, 'arm-7.tar');
    // The device's commands get no server: a closed port stands for "offline".
    const offline = { XDG_CONFIG_HOME: work, KURA_URL: 'http://127.0.0.1:9', KURA_EDGE_STATE_DIR: state };
    const online = { ...offline, KURA_URL: url, KURA_API_KEY: developer.key };
    let serving: ReturnType<typeof spawn> | undefined;
    const kuraCli = (args: string[], env: Record<string, string> = offline) => runKura(args, env);
    try {
      // Both datasets allow export: A at 2.00, B at 5.00 per 1,000 calls; the export records those terms.
      await setTerms(datasetB, otherOwner.key, { edgeExport: 'allow', feePer1000Calls: '5.00' });
      const expires = new Date(Date.now() + 7 * 86_400_000).toISOString();
      const exported = await kuraCli(
        ['policies', 'export', policyId, '--device', 'arm-7', '--expires', expires, '--quota', '1000', '--out', packagePath, '--json'],
        online,
      );
      expect(exported.code).toBe(0);
      const exportId = exported.json().exportId as string;
      // B's owner raises the fee afterwards: this export's calls stay at 5.00.
      await setTerms(datasetB, otherOwner.key, { edgeExport: 'allow', feePer1000Calls: '9.00' });
      expect((await kuraCli(['edge', 'keys'], online)).code).toBe(0);
      expect((await kuraCli(['edge', 'verify', packagePath, '--json'])).json()).toMatchObject({ exportId, deviceId: 'arm-7' });

      // kura edge run: the same action as the server's act, offline, with onnxruntime in the jail.
      const observation = { 'observation.state': [1, 2, 3, 4] };
      const server = await kura.request.post(`/v1/policies/${policyId}/act`).set(as(developer.key)).send({ observation });
      const ran = await kuraCli(['edge', 'run', packagePath, '--device', 'arm-7', '--obs', JSON.stringify(observation), '--json']);
      expect([ran.code, ran.stderr]).toEqual([0, '']);
      expect(ran.json()).toMatchObject({ action: server.body.action, policyId });
      // The same observation checks as the server's.
      for (const wrong of [{ 'observation.state': [1, 2] }, { 'observation.state': [1, 2, 3, 'four'] }, {}]) {
        const refused = await kura.request.post(`/v1/policies/${policyId}/act`).set(as(developer.key)).send({ observation: wrong });
        const bad = await kuraCli(['edge', 'run', packagePath, '--device', 'arm-7', '--obs', JSON.stringify(wrong)]);
        expect([bad.code, bad.stderr]).toEqual([1, expect.stringContaining(`kura: ${refused.body.error.code as string}: `)]);
      }
      const elsewhere = await kuraCli(['edge', 'run', packagePath, '--device', 'arm-8', '--obs', JSON.stringify(observation)]);
      expect(elsewhere.stderr).toContain('EDGE_DEVICE_MISMATCH');

      // kura edge serve: POST /act and openpi's WebSocket, locally.
      const serve = async (...extra: string[]) => {
        const child = spawn(
          process.execPath,
          [kuraBin, 'edge', 'serve', packagePath, '--device', 'arm-7', '--port', '0', '--json', ...extra],
          {
            env: { PATH: process.env.PATH, ...offline },
          },
        );
        serving = child;
        const stderr: string[] = [];
        child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
        // --json prints {url, exportId} once it listens.
        return new Promise<string>((resolve, reject) => {
          let printed = '';
          child.stdout.on('data', (chunk: Buffer) => {
            printed += chunk.toString();
            if (printed.trimEnd().endsWith('}')) resolve((JSON.parse(printed) as { url: string }).url);
          });
          child.once('exit', (code) => reject(new Error(`kura edge serve exited ${code}: ${stderr.join('')}`)));
        });
      };
      const actLocally = async (at: string) => {
        const reply = await fetch(`${at}/act`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ observation }),
        });
        expect([reply.status, ((await reply.json()) as { action: number[] }).action]).toEqual([200, server.body.action]);
      };
      const local = await serve();
      for (let call = 0; call < 3; call++) await actLocally(local);
      const socket = new WebSocket(`${local.replace('http', 'ws')}/`);
      const messages: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        socket.on('message', (data: Buffer) => {
          messages.push(data);
          if (messages.length === 1)
            socket.send(
              new Packr({ useRecords: false }).pack({
                'observation/state': {
                  __ndarray__: true,
                  data: Buffer.from(new Float32Array([1, 2, 3, 4]).buffer),
                  dtype: '<f4',
                  shape: [4],
                },
              }),
            );
          else resolve();
        });
        socket.on('error', reject);
      });
      socket.close();
      // msgpack_numpy's reply: bin keys inside the ndarray map.
      const reply = new Unpackr({ useRecords: false, mapsAsObjects: false }).unpack(messages[1]!) as Map<unknown, unknown>;
      const ndarray = reply.get('actions') as Map<Uint8Array, unknown>;
      const data = [...ndarray].find(([key]) => Buffer.from(key).toString() === 'data')![1] as Uint8Array;
      const actions = new Float32Array(new Uint8Array(data).buffer);
      expect(Array.from(actions).map((value, index) => Math.abs(value - (server.body.action as number[])[index]!) < 1e-5)).toEqual([
        true,
        true,
        true,
      ]);
      const stopped = new Promise((resolve) => serving!.once('exit', resolve));
      serving!.kill('SIGTERM');
      expect(await stopped).toBe(0);

      // The log: a record per run, and the server's window; chained, synced.
      const log = await UsageLog.read(state, exportId);
      expect([log.head.seq, log.calls]).toEqual([2, 5]);

      // Killed mid-window, a server loses only that window: the one written before it is kept.
      const crashing = await serve('--window', '3');
      await actLocally(crashing);
      await actLocally(crashing);
      await eventually(async () => ((await UsageLog.read(state, exportId)).head.seq === 3 ? true : undefined), 10_000);
      await actLocally(crashing);
      const killed = new Promise((resolve) => serving!.once('exit', (_code, signal) => resolve(signal)));
      serving!.kill('SIGKILL');
      expect(await killed).toBe('SIGKILL');
      const afterCrash = await UsageLog.read(state, exportId);
      expect([afterCrash.head.seq, afterCrash.calls]).toEqual([3, 7]);

      // The device made 993 more calls (as its log would hold them), and reports: 1,000 edge calls.
      const more = await UsageLog.open(state, exportId);
      await more.append({ from: new Date(), to: new Date(), calls: 993 });
      await more.close();
      const reported = await kuraCli(['edge', 'report', packagePath, '--json'], online);
      expect([reported.code, reported.stderr]).toEqual([0, '']);
      expect(reported.json()).toMatchObject({ exportId, accepted: 4, duplicates: 0, calls: 1000, lastSeq: 4, overQuota: false });

      // A: 1,000 × 2.00/1,000 × 3/4 = 1.50; B: 1,000 × 5.00 (the license's, not today's 9.00)/1,000 × 1/4 = 1.25.
      const edgeLine = async (datasetId: string, key: string) =>
        ((await earnings(datasetId, key)).body.lines as Array<{ exportId: string | null }>).find((line) => line.exportId === exportId);
      expect(await edgeLine(datasetA, owner.key)).toMatchObject({
        policyId,
        share: 0.75,
        feeMinorPer1000: 200,
        calls: { act: 0, sessionSteps: 0, edge: 1000, total: 1000 },
        amountMinor: 150,
      });
      expect(await edgeLine(datasetB, otherOwner.key)).toMatchObject({ share: 0.25, feeMinorPer1000: 500, amountMinor: 125 });

      // The quota is spent: the device refuses the next call.
      const spent = await kuraCli(['edge', 'run', packagePath, '--device', 'arm-7', '--obs', JSON.stringify(observation)]);
      expect([spent.code, spent.stderr]).toEqual([1, expect.stringContaining('EDGE_QUOTA_EXCEEDED')]);

      // Reports that skip, repeat, rewrite or reorder records are refused, each with its code and record.
      const records = (await UsageLog.read(state, exportId)).after(0);
      const last = records[3]!;
      const next = (fields: Partial<EdgeUsageRecord> = {}) => {
        const at = new Date(Date.parse(last.to) + 1000).toISOString();
        return sealRecord({ exportId, seq: 5, from: at, to: at, calls: 7, prev: last.hash, ...fields });
      };
      const report = (body: EdgeUsageRecord[]) =>
        kura.request.post(`/v1/edge-exports/${exportId}/usage`).set(as(developer.key)).send({ records: body });
      const outcome = async (body: EdgeUsageRecord[]) => {
        const answer = await report(body);
        return [answer.status, answer.body.error?.code ?? 'accepted', answer.body.error?.details?.location?.field];
      };
      expect([
        await outcome([{ ...next(), calls: 70 }]),
        await outcome([next({ seq: 6 })]),
        await outcome([next({ prev: records[1]!.hash })]),
        await outcome([
          sealRecord({ exportId, seq: 1, from: records[0]!.from, to: records[0]!.to, calls: 0, prev: genesisHash(exportId) }),
        ]),
        await outcome([records[1]!, records[0]!]),
        await outcome([next({ from: records[0]!.from })]),
        await outcome([{ ...next(), exportId: 'edx_other' }]),
      ]).toEqual([
        [409, 'EDGE_USAGE_TAMPERED', 'records.0.hash'],
        [409, 'EDGE_USAGE_GAP', 'records.0.seq'],
        [409, 'EDGE_USAGE_CHAIN_BROKEN', 'records.0.prev'],
        [409, 'EDGE_USAGE_REWRITTEN', 'records.0.hash'],
        [409, 'EDGE_USAGE_REORDERED', 'records.1.seq'],
        [409, 'EDGE_USAGE_TIME_INVALID', 'records.0.from'],
        [409, 'EDGE_USAGE_WRONG_EXPORT', 'records.0.exportId'],
      ]);
      // The same report again is accepted and changes nothing.
      const again = await report(records);
      expect([again.status, again.body.accepted, again.body.duplicates, again.body.calls]).toEqual([200, 0, 4, 1000]);

      // A tampered log on the device is caught before the policy runs; so is a tampered package.
      const logFile = join(state, `${exportId}.usage.log`);
      const intact = await readFile(logFile, 'utf8');
      await writeFile(logFile, intact.replace('"calls":993', '"calls":3'));
      const forged = await kuraCli(['edge', 'run', packagePath, '--device', 'arm-7', '--obs', JSON.stringify(observation)]);
      expect([forged.code, forged.stderr]).toEqual([1, expect.stringContaining('EDGE_USAGE_TAMPERED')]);
      await writeFile(logFile, intact);
      const files = await unpackEdgePackage(await readFile(packagePath));
      const model = Buffer.from(files.get('policy.tar.gz')!);
      model.writeUInt8(model.readUInt8(model.length - 1) ^ 0xff, model.length - 1);
      const tamperedPath = join(work, 'tampered.tar');
      await writeFile(
        tamperedPath,
        await packEdgePackage(
          [...files].map(([name, bytes]) => [name, name === 'policy.tar.gz' ? model : bytes]),
          new Date(),
        ),
      );
      const tampered = await kuraCli(['edge', 'run', tamperedPath, '--device', 'arm-7', '--obs', JSON.stringify(observation)]);
      expect([tampered.code, tampered.stderr]).toEqual([1, expect.stringContaining('EDGE_POLICY_TAMPERED')]);

      // A clock set back before the last counted call is refused.
      const keys = JSON.parse(await readFile(join(state, 'keys.json'), 'utf8')) as EdgeKeysView;
      const past = new Date(Date.now() - 3_600_000);
      await expect(EdgeRunner.open({ packagePath, keys, deviceId: 'arm-7', stateDir: state, now: () => past })).rejects.toMatchObject({
        code: 'EDGE_CLOCK_BACKWARDS',
      });

      // Renewal after a recent report: a new license in the package; then revocation ends reports and renewals.
      const later = new Date(Date.now() + 30 * 86_400_000).toISOString();
      const renewed = await kuraCli(['edge', 'renew', packagePath, '--expires', later, '--json'], online);
      expect([renewed.code, renewed.stderr]).toEqual([0, '']);
      expect((await kuraCli(['edge', 'verify', packagePath, '--json'])).json()).toMatchObject({ exportId, expiresAt: later });
      await kura.request.delete(`/v1/edge-exports/${exportId}`).set(as(developer.key));
      const afterRevoke = await kuraCli(['edge', 'report', packagePath], online);
      expect([afterRevoke.code, afterRevoke.stderr]).toEqual([1, expect.stringContaining('EDGE_EXPORT_REVOKED')]);
      expect((await kuraCli(['edge', 'renew', packagePath, '--expires', later], online)).stderr).toContain('EDGE_EXPORT_REVOKED');
    } finally {
      serving?.kill('SIGKILL');
      await rm(work, { recursive: true, force: true });
    }
  }, 180_000);
});
