import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { describeBlobStoreContract } from './blob-store.contract.js';
import { BlobRangeError, InvalidBlobKeyError, MIN_MULTIPART_PART_BYTES } from './blob-store.js';
import { FilesystemBlobStore } from './filesystem-blob-store.js';
import { S3BlobStore } from './s3-blob-store.js';

describeBlobStoreContract('FilesystemBlobStore', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'kura-blobs-'));
  return {
    store: new FilesystemBlobStore({ directory }),
    cleanup: () => rm(directory, { recursive: true, force: true }),
  };
});

describeBlobStoreContract(
  'S3BlobStore on s3rver',
  async () => {
    // Listings stay within one page: s3rver's continuation tokens are DES-encrypted, which Node 20's
    // OpenSSL 3 refuses, so any truncated listing fails there with InternalError.
    const store = new S3BlobStore({
      endpoint: requiredEnv('KURA_TEST_S3_ENDPOINT'),
      bucket: requiredEnv('KURA_TEST_S3_BUCKET'),
      region: 'us-east-1',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      forcePathStyle: true,
    });
    const keyPrefix = `blob-store-contract-${randomBytes(6).toString('hex')}`;
    return {
      store,
      keyPrefix,
      cleanup: async () => {
        const keys: string[] = [];
        for await (const blob of store.list({ prefix: `${keyPrefix}/` })) keys.push(blob.key);
        for (const key of keys) await store.delete({ key });
        store.client.destroy();
      },
    };
  },
  { backendGaps: { multipartAbort: 's3rver 3.7 answers AbortMultipartUpload with 405 MethodNotAllowed' } },
);

describe('FilesystemBlobStore beyond the contract', () => {
  let directory: string;
  let store: FilesystemBlobStore;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'kura-blobs-'));
    store = new FilesystemBlobStore({ directory });
  });

  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('keeps a blob at <directory>/<key> and leaves no temporary file behind, even after a failed write', async () => {
    await store.put({ key: 'datasets/ds_1/manifest.json', body: Buffer.from('{}') });
    await expect(store.put({ key: 'datasets/ds_1/broken.bin', body: failingBody() })).rejects.toThrow('body source failed');

    expect((await stat(join(directory, 'datasets', 'ds_1', 'manifest.json'))).size).toBe(2);
    expect(await readdir(join(directory, '.tmp'))).toEqual([]);
  });

  it('lists keys in byte order across folders, without its own bookkeeping files', async () => {
    for (const key of ['order/b', 'order/a0', 'order/a/x', 'order/a-b']) await store.put({ key, body: Buffer.from(key) });
    // An unfinished upload puts files under .multipart/; a crashed put would leave one under .tmp/.
    const { uploadId } = await store.createMultipartUpload({ key: 'order/pending' });
    await store.uploadPart({ key: 'order/pending', uploadId, partNumber: 1, body: Buffer.from('part') });

    const everything = await collect(store.list({ prefix: '' }));

    expect(everything.map((blob) => blob.key).filter((key) => key.startsWith('order/'))).toEqual([
      'order/a-b',
      'order/a/x',
      'order/a0',
      'order/b',
    ]);
    expect(everything.some((blob) => blob.key.startsWith('.'))).toBe(false);
  });

  it('refuses to complete with an etag of a part that was uploaded again since', async () => {
    const key = 'etag/replaced.bin';
    const { uploadId } = await store.createMultipartUpload({ key });
    const stale = await store.uploadPart({ key, uploadId, partNumber: 1, body: randomBytes(16) });
    await store.uploadPart({ key, uploadId, partNumber: 1, body: randomBytes(16) });

    await expect(store.completeMultipartUpload({ key, uploadId, parts: [stale] })).rejects.toThrow(/does not match etag/);
    expect(await store.head({ key })).toBeUndefined();
    expect(await readdir(join(directory, '.tmp'))).toEqual([]);
  });

  it('refuses to complete with a part that was never uploaded, a small part before the last, or a part listed twice', async () => {
    const key = 'etag/incomplete.bin';
    const { uploadId } = await store.createMultipartUpload({ key });
    const first = await store.uploadPart({ key, uploadId, partNumber: 1, body: randomBytes(MIN_MULTIPART_PART_BYTES) });
    const small = await store.uploadPart({ key, uploadId, partNumber: 2, body: randomBytes(100) });
    const last = await store.uploadPart({ key, uploadId, partNumber: 3, body: randomBytes(100) });

    await expect(store.completeMultipartUpload({ key, uploadId, parts: [first, { partNumber: 4, etag: last.etag }] })).rejects.toThrow(
      /part 4 .* never uploaded/,
    );
    await expect(store.completeMultipartUpload({ key, uploadId, parts: [first, small, last] })).rejects.toThrow(
      /part 2 .* needs at least 5242880/,
    );
    await expect(store.completeMultipartUpload({ key, uploadId, parts: [first, first] })).rejects.toThrow(/part 1 is listed twice/);
    expect(await store.head({ key })).toBeUndefined();
    // Refusals leave the upload usable.
    await expect(store.completeMultipartUpload({ key, uploadId, parts: [first, last] })).resolves.toEqual({
      bytes: MIN_MULTIPART_PART_BYTES + 100,
    });
  });

  it('refuses a part whose length differs from the announced one', async () => {
    const key = 'parts/announced.bin';
    const { uploadId } = await store.createMultipartUpload({ key });

    await expect(store.uploadPart({ key, uploadId, partNumber: 1, body: Readable.from([Buffer.alloc(10)]), bytes: 11 })).rejects.toThrow(
      /10 bytes, not the 11 announced/,
    );
  });

  it('refuses keys inside its own bookkeeping folders', async () => {
    await expect(store.put({ key: '.tmp/x', body: Buffer.from('x') })).rejects.toBeInstanceOf(InvalidBlobKeyError);
    await expect(store.head({ key: '.multipart/x' })).rejects.toBeInstanceOf(InvalidBlobKeyError);
  });

  it('reads offset 0 of an empty blob as no bytes, and any other offset as out of range', async () => {
    await store.put({ key: 'empty/blob', body: Buffer.alloc(0) });

    expect(await collect(await store.get({ key: 'empty/blob', range: { offset: 0 } }))).toEqual([]);
    await expect(store.get({ key: 'empty/blob', range: { offset: 1 } })).rejects.toBeInstanceOf(BlobRangeError);
  });

  it('removes the folders a delete leaves empty', async () => {
    await store.put({ key: 'tidy/deep/er/blob', body: Buffer.from('x') });
    await store.put({ key: 'tidy/kept', body: Buffer.from('x') });

    await store.delete({ key: 'tidy/deep/er/blob' });

    expect(await readdir(join(directory, 'tidy'))).toEqual(['kept']);
  });

  it('says clearly that a key cannot be both a blob and a folder', async () => {
    await store.put({ key: 'clash/a', body: Buffer.from('x') });

    await expect(store.put({ key: 'clash/a/b', body: Buffer.from('x') })).rejects.toThrow(/cannot be both a blob and a folder/);
  });
});

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through jest, whose global setup starts s3rver`);
  return value;
}

function failingBody(): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    yield randomBytes(1000);
    throw new Error('body source failed');
  }
  return Readable.from(chunks(), { objectMode: false });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const collected: T[] = [];
  for await (const item of items) collected.push(item);
  return collected;
}
