// Resumable uploads: parts through the API (embedded mode, filesystem blobs) and straight to the
// object store with presigned URLs (S3 mode, against s3rver).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, eventually, s3Environment, startTestApp, type TestApp } from '../../../../test/support/app.js';

const MiB = 1024 * 1024;

/** NDJSON of about `targetBytes`: steps with a long padding-free state vector. */
function bigNdjson(targetBytes: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let step = 0; size < targetBytes; step++) {
    const line = JSON.stringify({
      episode: Math.floor(step / 500),
      step: step % 500,
      observation: { state: Array.from({ length: 64 }, (_, index) => step + index / 64) },
      action: [step % 7],
    });
    lines.push(line);
    size += line.length + 1;
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

describe.each([
  ['through the API (filesystem blobs)', {}],
  ['to presigned object-store URLs (S3)', 'S3' as const],
])('resumable uploads %s', (_name, mode) => {
  let kura: TestApp;
  let operator: { key: string };
  let datasetId: string;
  let body: Buffer;

  beforeAll(async () => {
    const environment = mode === 'S3' ? s3Environment() : mode;
    kura = await startTestApp(environment);
    operator = await kura.createKey('operator');
    const robot = await kura.request
      .post('/v1/robots')
      .set(bearer(operator.key))
      .send({ name: 'arm', robotType: 'so101', controlFrequencyHz: 10, actionSpace: 'other' });
    datasetId = (
      await kura.request
        .post('/v1/datasets')
        .set(bearer(operator.key))
        .send({ name: `mp-${Date.now()}-${Math.random()}`, robotId: robot.body.id, access: 'private' })
    ).body.id;
    body = bigNdjson(11 * MiB);
  });
  afterAll(async () => {
    await kura.close();
  });

  const start = (bytes = body.length, sha256 = createHash('sha256').update(body).digest('hex')) =>
    kura.request
      .post(`/v1/datasets/${datasetId}/uploads`)
      .set(bearer(operator.key))
      .send({ multipart: true, bytes, sha256, partSize: 5 * MiB, format: 'kura-ndjson' });
  const sendPart = async (
    part: { url: string; viaApi: boolean; offset: number; bytes: number; partNumber: number },
    bytes = body.subarray(part.offset, part.offset + part.bytes),
  ) => {
    if (part.viaApi) {
      const response = await kura.request
        .put(part.url)
        .set(bearer(operator.key))
        .set('Content-Type', 'application/octet-stream')
        .send(bytes);
      return { status: response.status, etag: response.headers.etag as string, body: response.body };
    }
    const response = await fetch(part.url, { method: 'PUT', body: bytes });
    return { status: response.status, etag: response.headers.get('etag') ?? '', body: await response.text() };
  };

  it('accepts parts in any order, again after an interruption, and publishes the whole', async () => {
    const started = await start();
    expect(started.status).toBe(201);
    expect(started.body.upload.status).toBe('uploading');
    const parts = started.body.parts as Array<{ partNumber: number; url: string; viaApi: boolean; offset: number; bytes: number }>;
    expect(parts.map((part) => part.bytes)).toEqual([5 * MiB, 5 * MiB, body.length - 10 * MiB]);
    expect(parts.every((part) => part.viaApi === (mode !== 'S3'))).toBe(true);

    const etags = new Map<number, string>();
    for (const part of [parts[2]!, parts[0]!, parts[1]!]) {
      const sent = await sendPart(part);
      expect(sent.status).toBe(200);
      etags.set(part.partNumber, sent.etag);
    }
    // A client that lost track of part 2 sends it again; the new copy replaces the old.
    etags.set(2, (await sendPart(parts[1]!)).etag);

    const completed = await kura.request
      .post(started.body.completeUrl)
      .set(bearer(operator.key))
      .send({ parts: [...etags].map(([partNumber, etag]) => ({ partNumber, etag })) });
    expect(completed.status).toBe(202);
    expect(completed.body).toMatchObject({
      status: expect.stringMatching(/received|processing|published/),
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
    const done = await eventually(async () => {
      const response = await kura.request.get(`/v1/uploads/${started.body.upload.id}`).set(bearer(operator.key));
      return ['published', 'failed'].includes(response.body.status) ? response.body : undefined;
    }, 60_000);
    expect(done).toMatchObject({ status: 'published', errors: [] });
    expect(done.stepCount).toBe(body.toString('utf8').trimEnd().split('\n').length);
  });

  it('fails an upload whose parts do not add up to the declared sha256, keeping nothing', async () => {
    const started = await start(body.length, '0'.repeat(64));
    const parts = started.body.parts;
    const etags = [];
    for (const part of parts) etags.push({ partNumber: part.partNumber, etag: (await sendPart(part)).etag });
    const completed = await kura.request.post(started.body.completeUrl).set(bearer(operator.key)).send({ parts: etags });
    expect([completed.status, completed.body.error.code]).toEqual([400, 'UPLOAD_CHECKSUM_MISMATCH']);
    const upload = await kura.request.get(`/v1/uploads/${started.body.upload.id}`).set(bearer(operator.key));
    expect(upload.body).toMatchObject({ status: 'failed', errors: [{ code: 'UPLOAD_CHECKSUM_MISMATCH' }] });
    const again = await kura.request.post(started.body.completeUrl).set(bearer(operator.key)).send({ parts: etags });
    expect([again.status, again.body.error.code]).toEqual([409, 'UPLOAD_NOT_RESUMABLE']);
  });

  it('refuses missing parts at completion, and bad part numbers and sizes through the API', async () => {
    const started = await start();
    const incomplete = await kura.request
      .post(started.body.completeUrl)
      .set(bearer(operator.key))
      .send({ parts: [{ partNumber: 1, etag: 'x' }] });
    expect([incomplete.status, incomplete.body.error.code]).toEqual([400, 'UPLOAD_PARTS_INCOMPLETE']);
    const badStart = await kura.request
      .post(`/v1/datasets/${datasetId}/uploads`)
      .set(bearer(operator.key))
      .send({ multipart: true, bytes: -1, sha256: 'zz' });
    expect([badStart.status, badStart.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    if (mode !== 'S3') {
      const id = started.body.upload.id as string;
      const wrongNumber = await kura.request
        .put(`/v1/uploads/${id}/parts/9`)
        .set(bearer(operator.key))
        .set('Content-Type', 'application/octet-stream')
        .send(Buffer.from('x'));
      expect([wrongNumber.status, wrongNumber.body.error.code]).toEqual([400, 'UPLOAD_PART_INVALID']);
      const short = await kura.request
        .put(`/v1/uploads/${id}/parts/1`)
        .set(bearer(operator.key))
        .set('Content-Type', 'application/octet-stream')
        .send(Buffer.alloc(10));
      expect([short.status, short.body.error.code]).toEqual([400, 'UPLOAD_PART_SIZE']);
      const stranger = await kura.createKey('operator');
      const foreign = await kura.request
        .put(`/v1/uploads/${id}/parts/1`)
        .set(bearer(stranger.key))
        .set('Content-Type', 'application/octet-stream')
        .send(Buffer.alloc(10));
      expect([foreign.status, foreign.body.error.code]).toEqual([404, 'UPLOAD_NOT_FOUND']);
    }
  });
});
