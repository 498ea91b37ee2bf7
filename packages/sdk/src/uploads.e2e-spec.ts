import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { s3Environment, startTestApp, type TestApp } from '../../../test/support/app.js';
import { createDataset, seedNdjson } from '../../../test/support/datasets.js';
import { KuraClient } from './client.js';

// The CLI tests cover embedded mode (parts through the API); here the parts go to presigned S3 URLs.
describe('KuraClient uploads on an S3 blob store (presigned part URLs)', () => {
  let kura: TestApp;
  let client: KuraClient;
  let scratch: string;
  let operatorKey: string;

  beforeAll(async () => {
    kura = await startTestApp(s3Environment());
    await kura.app.listen(0, '127.0.0.1');
    operatorKey = (await kura.createKey('operator')).key;
    client = new KuraClient({ url: `http://127.0.0.1:${(kura.app.getHttpServer().address() as AddressInfo).port}`, apiKey: operatorKey });
    scratch = await mkdtemp(join(tmpdir(), 'kura-sdk-s3-'));
  }, 60_000);
  afterAll(async () => {
    await kura.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('sends a large file in parts straight to the object store and publishes it; a repeat finds the same upload', async () => {
    const datasetId = await createDataset(kura, operatorKey);
    const file = join(scratch, 'big.ndjson');
    await writeFile(file, seedNdjson({ episodes: 40, length: 500, stateDims: 14 }));
    const progress: Array<{ phase: string; bytes: number }> = [];
    const stateDirectory = join(scratch, 'state');
    const upload = await client.uploads.uploadPath(datasetId, file, {
      multipartThreshold: 1024 * 1024,
      partSize: 5 * 1024 * 1024,
      stateDirectory,
      onProgress: ({ phase, bytes }) => progress.push({ phase, bytes }),
    });
    expect(upload.status).toBe('received');
    const published = await client.uploads.wait(upload.id);
    expect(published).toMatchObject({ status: 'published', episodeCount: 40, stepCount: 20_000 });
    expect(progress.filter((entry) => entry.phase === 'sending').at(-1)?.bytes).toBe(upload.bytes);
    expect(await readdir(stateDirectory)).toEqual([]);
    const again = await client.uploads.uploadPath(datasetId, file, { multipartThreshold: 1024 * 1024, partSize: 5 * 1024 * 1024 });
    expect(again.id).toBe(upload.id);
  }, 60_000);
});
