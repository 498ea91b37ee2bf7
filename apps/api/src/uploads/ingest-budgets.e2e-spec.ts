// Uploads that declare far more than they hold (#19): each fails coded — the limit named, the place
// given — with nothing published, and the api goes on serving and publishing. The hostile files are
// made at test time (packages/formats/src/testing/hostile-files.ts).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { tarGzOfFolder } from '../../../../test/support/archives.js';
import { createDataset, publish, seedNdjson } from '../../../../test/support/datasets.js';
import {
  constantParquet,
  lerobotColumns,
  writeLerobotWithParquet,
  writeSparseAlohaHdf5,
} from '../../../../packages/formats/src/testing/hostile-files.js';

describe('uploads past the resource budgets and the feature spec limits', () => {
  let kura: TestApp;
  let operator: string;
  let scratch: string;

  beforeAll(async () => {
    kura = await startTestApp();
    operator = (await kura.createKey('operator')).key;
    scratch = await mkdtemp(join(tmpdir(), 'kura-budgets-'));
  });
  afterAll(async () => {
    await kura.close();
    await rm(scratch, { recursive: true, force: true });
  });

  async function upload(datasetId: string, query: string, body: Buffer) {
    const accepted = await kura.request
      .post(`/v1/datasets/${datasetId}/uploads?${query}`)
      .set(bearer(operator))
      .set('Content-Type', 'application/octet-stream')
      .send(body);
    expect(accepted.status).toBe(202);
    return eventually(async () => {
      const response = await kura.request.get(`/v1/uploads/${accepted.body.id}`).set(bearer(operator));
      return ['published', 'failed'].includes(response.body.status) ? response.body : undefined;
    }, 120_000);
  }

  /** The dataset published nothing, the api answers, and the dataset takes a good upload next. */
  async function expectUnharmed(datasetId: string) {
    expect((await kura.request.get(`/v1/datasets/${datasetId}`).set(bearer(operator))).body.latestVersion).toBe(0);
    expect((await kura.request.get('/health')).status).toBe(200);
    expect((await publish(kura, operator, datasetId, seedNdjson({ episodes: 1, length: 3, stateDims: 14 }))).version).toBe(1);
  }

  it('an 8 KB sparse HDF5 file declaring 5,000,000 steps: INGEST_LIMIT_EXCEEDED (steps) at /action', async () => {
    const path = join(scratch, 'episode_0.hdf5');
    await writeSparseAlohaHdf5(path, { steps: 5_000_000 });
    const datasetId = await createDataset(kura, operator);

    const done = await upload(datasetId, 'format=hdf5-aloha&fileName=episode_0.hdf5', await readFile(path));
    expect(done).toMatchObject({
      status: 'failed',
      errors: [
        {
          code: 'INGEST_LIMIT_EXCEEDED',
          location: { file: 'episode_0.hdf5', episode: 'episode_0', field: '/action' },
          details: { limit: 'steps', value: 5_000_000 },
        },
      ],
    });
    await expectUnharmed(datasetId);
  });

  it('one 52 MB NDJSON line of 25 million zeros: FEATURE_SPEC_INVALID at observation.state', async () => {
    const datasetId = await createDataset(kura, operator);
    const zeros = `[${'0,'.repeat(25_000_000 - 1)}0]`;
    const body = Buffer.from(`{"episode":0,"step":0,"observation":{"state":${zeros}},"action":[0]}\n`);

    const done = await upload(datasetId, 'format=kura-ndjson', body);
    expect(done).toMatchObject({
      status: 'failed',
      errors: [{ code: 'FEATURE_SPEC_INVALID', location: { file: expect.any(String), field: 'observation.state' } }],
    });
    expect(done.errors[0].message).toContain('25000000 (at most 1,000,000)');
    await expectUnharmed(datasetId);
  });

  it('a LeRobot dataset whose parquet page declares 500,000,000 values: INGEST_LIMIT_EXCEEDED (tensorBytes) at the column', async () => {
    const folder = join(scratch, 'lerobot-bomb');
    await writeLerobotWithParquet(folder, {
      length: 1,
      parquet: constantParquet({ rows: 1, columns: lerobotColumns({ state: 500_000_000, others: 1 }) }),
    });
    const datasetId = await createDataset(kura, operator);

    const done = await upload(datasetId, 'format=lerobot&fileName=dataset.tar.gz', await tarGzOfFolder(folder));
    expect(done).toMatchObject({
      status: 'failed',
      errors: [
        {
          code: 'INGEST_LIMIT_EXCEEDED',
          location: { file: 'data/chunk-000/episode_000000.parquet', episode: 0, field: 'observation.state' },
          details: { limit: 'tensorBytes' },
        },
      ],
    });
    await expectUnharmed(datasetId);
  });

  it('a dataset created with a feature named __proto__ is refused, naming it, instead of created without it', async () => {
    const robotId = (
      await kura.request
        .post('/v1/robots')
        .set(bearer(operator))
        .send({ name: `proto-${Date.now()}`, robotType: 'so101', controlFrequencyHz: 30, actionSpace: 'joint_position' })
    ).body.id;
    const response = await kura.request
      .post('/v1/datasets')
      .set(bearer(operator))
      .set('Content-Type', 'application/json')
      .send(
        `{"name":"proto-${Date.now()}","robotId":"${robotId}","access":"public","features":{"__proto__":{"dtype":"float32","shape":[2]}}}`,
      );
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { issues: [expect.objectContaining({ path: 'features.__proto__' })] },
    });
  });
});
