import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  BlobNotFoundError,
  BlobRangeError,
  InvalidBlobKeyError,
  MIN_MULTIPART_PART_BYTES,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
} from './blob-store.js';
import { chunkToBuffer } from './stream-chunks.js';

export interface BlobStoreUnderTest {
  store: BlobStore;
  /** Removes what the suite wrote (the store's folder, or the keys under `keyPrefix`). */
  cleanup: () => Promise<void>;
  /** Every key the suite writes starts with `<keyPrefix>/`; "contract" when absent. */
  keyPrefix?: string;
}

export interface BlobStoreContractOptions {
  /**
   * What the backend behind the adapter cannot do (not the adapter), each with the reason. For such
   * a gap the suite checks that the adapter reports the failure instead of hiding it.
   */
  backendGaps?: {
    /** The backend rejects AbortMultipartUpload (s3rver). */
    multipartAbort?: string;
  };
}

const MiB = 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;

/**
 * The behaviour every BlobStore adapter must have, run against a real backend. `makeStore` is
 * called once for the suite; each test writes under its own random prefix.
 */
export function describeBlobStoreContract(
  name: string,
  makeStore: () => Promise<BlobStoreUnderTest>,
  options: BlobStoreContractOptions = {},
): void {
  describe(`BlobStore contract: ${name}`, () => {
    let subject: BlobStoreUnderTest | undefined;

    beforeAll(async () => {
      subject = await makeStore();
    });

    afterAll(async () => {
      await subject?.cleanup();
    });

    function store(): BlobStore {
      if (!subject) throw new Error('the store was not made (beforeAll failed)');
      return subject.store;
    }

    function uniquePrefix(): string {
      return `${subject?.keyPrefix ?? 'contract'}/${randomBytes(6).toString('hex')}`;
    }

    it('round-trips a streamed body of several MiB byte for byte', async () => {
      const key = `${uniquePrefix()}/streamed.bin`;
      const totalBytes = 12 * MiB + 5;
      const source = randomBody(totalBytes);

      const written = await store().put({ key, body: source.body, contentType: 'application/octet-stream' });

      expect(written.bytes).toBe(totalBytes);
      expect(await digestOf(await store().get({ key }))).toEqual({ sha256: source.sha256(), bytes: totalBytes });
      expect((await store().head({ key }))?.bytes).toBe(totalBytes);
    });

    it('round-trips a Buffer body, including an empty one', async () => {
      const prefix = uniquePrefix();
      const body = Buffer.from('episode 0: 42 steps');

      expect(await store().put({ key: `${prefix}/note.txt`, body })).toEqual({ bytes: body.length });
      expect(await store().put({ key: `${prefix}/empty`, body: Buffer.alloc(0) })).toEqual({ bytes: 0 });

      expect(await readAll(await store().get({ key: `${prefix}/note.txt` }))).toEqual(body);
      expect(await readAll(await store().get({ key: `${prefix}/empty` }))).toEqual(Buffer.alloc(0));
      expect((await store().head({ key: `${prefix}/empty` }))?.bytes).toBe(0);
    });

    it('replaces a blob that is written again', async () => {
      const key = `${uniquePrefix()}/overwritten.txt`;
      await store().put({ key, body: Buffer.from('the first, longer version') });
      await store().put({ key, body: Buffer.from('second') });

      expect((await readAll(await store().get({ key }))).toString()).toBe('second');
      expect((await store().head({ key }))?.bytes).toBe('second'.length);
    });

    it('reads byte ranges, clamping a length that runs past the end', async () => {
      const key = `${uniquePrefix()}/ranged.bin`;
      const blob = patternBytes(1000);
      await store().put({ key, body: blob });
      const readRange = async (range: ByteRange): Promise<Buffer> => readAll(await store().get({ key, range }));

      expect(await readRange({ offset: 100, length: 50 })).toEqual(blob.subarray(100, 150));
      expect(await readRange({ offset: 900 })).toEqual(blob.subarray(900));
      expect(await readRange({ offset: 990, length: 100 })).toEqual(blob.subarray(990));
      expect(await readRange({ offset: 0, length: 1 })).toEqual(blob.subarray(0, 1));
      expect(await readRange({ offset: 999, length: 1 })).toEqual(blob.subarray(999));
      expect(await readRange({ offset: 0 })).toEqual(blob);
      expect(await readRange({ offset: 10, length: 0 })).toEqual(Buffer.alloc(0));
    });

    it('refuses a range that starts outside the blob with BlobRangeError', async () => {
      const key = `${uniquePrefix()}/ranged.bin`;
      await store().put({ key, body: patternBytes(1000) });

      for (const range of [{ offset: 1000 }, { offset: 5000, length: 10 }, { offset: -1, length: 10 }]) {
        const error = await rejectionOf(store().get({ key, range }));
        expect({ range, error }).toEqual({ range, error: expect.any(BlobRangeError) });
        expect(error).toMatchObject({ key, size: 1000 });
      }
    });

    it('reports a missing blob with BlobNotFoundError, with or without a range', async () => {
      const key = `${uniquePrefix()}/missing.bin`;

      await expect(store().get({ key })).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(store().get({ key, range: { offset: 0, length: 10 } })).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(store().get({ key })).rejects.toMatchObject({ key });
    });

    it('heads a present blob with its size and date, and an absent one as undefined', async () => {
      const key = `${uniquePrefix()}/headed.bin`;
      const before = Date.now();
      await store().put({ key, body: patternBytes(321) });

      const info = await store().head({ key });

      expect(info).toEqual({ key, bytes: 321, lastModified: expect.any(Date) });
      // Some stores keep whole seconds only; the date must still be "now", not a default.
      expect(Math.abs((info?.lastModified.getTime() ?? 0) - before)).toBeLessThan(60_000);
      expect(await store().head({ key: `${key}.absent` })).toBeUndefined();
    });

    it('deletes a blob, and deletes an absent key without error', async () => {
      const key = `${uniquePrefix()}/deleted.bin`;
      await store().put({ key, body: Buffer.from('short-lived') });

      await store().delete({ key });

      expect(await store().head({ key })).toBeUndefined();
      await expect(store().get({ key })).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(store().delete({ key })).resolves.toBeUndefined();
      await expect(store().delete({ key: `${uniquePrefix()}/never-written` })).resolves.toBeUndefined();
    });

    it('lists exactly the keys that start with a prefix, in key order', async () => {
      const prefix = uniquePrefix();
      const listedKeys = ['k3', 'k0', 'k4', 'k1', 'k2'].map((name) => `${prefix}/list/${name}`);
      const otherKeys = [`${prefix}/listx/other`, `${prefix}/elsewhere/k0`];
      await Promise.all([...listedKeys, ...otherKeys].map((key, index) => store().put({ key, body: patternBytes(index + 1) })));
      const sortedListedKeys = [...listedKeys].sort();

      const listed = await collect(store().list({ prefix: `${prefix}/list/` }));

      expect(listed.map((blob) => blob.key)).toEqual(sortedListedKeys);
      for (const blob of listed)
        expect(blob).toEqual({ key: blob.key, bytes: listedKeys.indexOf(blob.key) + 1, lastModified: expect.any(Date) });
      // A prefix is a string prefix, not a folder: `list` also matches `listx/…`.
      expect((await collect(store().list({ prefix: `${prefix}/list` }))).map((blob) => blob.key)).toEqual([
        ...sortedListedKeys,
        `${prefix}/listx/other`,
      ]);
      expect(await collect(store().list({ prefix: `${prefix}/nothing/` }))).toEqual([]);
    });

    it('joins multipart parts (5 MiB, 5 MiB, small) into one blob', async () => {
      const key = `${uniquePrefix()}/multipart.bin`;
      const first = randomBytes(MIN_MULTIPART_PART_BYTES);
      const second = randomBytes(MIN_MULTIPART_PART_BYTES);
      const last = randomBytes(1234);
      const { uploadId } = await store().createMultipartUpload({ key, contentType: 'application/octet-stream' });

      // Each way of passing a part: a stream with its length, a Buffer, a stream of unknown length.
      const parts = [
        await store().uploadPart({ key, uploadId, partNumber: 1, body: streamOf(first), bytes: first.length }),
        await store().uploadPart({ key, uploadId, partNumber: 2, body: second }),
        await store().uploadPart({ key, uploadId, partNumber: 3, body: streamOf(last) }),
      ];
      expect(await store().head({ key })).toBeUndefined();
      const completed = await store().completeMultipartUpload({ key, uploadId, parts });

      const expected = Buffer.concat([first, second, last]);
      expect(completed).toEqual({ bytes: expected.length });
      expect(await digestOf(await store().get({ key }))).toEqual({ sha256: sha256(expected), bytes: expected.length });
    });

    it('orders multipart parts by number, whatever order they were uploaded and listed in', async () => {
      const key = `${uniquePrefix()}/out-of-order.bin`;
      const first = randomBytes(MIN_MULTIPART_PART_BYTES);
      const second = randomBytes(MIN_MULTIPART_PART_BYTES);
      const last = randomBytes(77);
      const { uploadId } = await store().createMultipartUpload({ key });

      const thirdPart = await store().uploadPart({ key, uploadId, partNumber: 3, body: last });
      const firstPart = await store().uploadPart({ key, uploadId, partNumber: 1, body: first });
      const secondPart = await store().uploadPart({ key, uploadId, partNumber: 2, body: second });
      await store().completeMultipartUpload({ key, uploadId, parts: [secondPart, thirdPart, firstPart] });

      expect(await digestOf(await store().get({ key }))).toEqual({
        sha256: sha256(Buffer.concat([first, second, last])),
        bytes: 2 * MIN_MULTIPART_PART_BYTES + 77,
      });
    });

    it('replaces a part that is uploaded again under the same number', async () => {
      const key = `${uniquePrefix()}/replaced-part.bin`;
      const discarded = randomBytes(MIN_MULTIPART_PART_BYTES);
      const kept = randomBytes(MIN_MULTIPART_PART_BYTES);
      const last = randomBytes(10);
      const { uploadId } = await store().createMultipartUpload({ key });

      const discardedPart = await store().uploadPart({ key, uploadId, partNumber: 1, body: discarded });
      const keptPart = await store().uploadPart({ key, uploadId, partNumber: 1, body: kept });
      const lastPart = await store().uploadPart({ key, uploadId, partNumber: 2, body: last });
      await store().completeMultipartUpload({ key, uploadId, parts: [keptPart, lastPart] });

      expect(keptPart.etag).not.toBe(discardedPart.etag);
      expect(await digestOf(await store().get({ key }))).toEqual({
        sha256: sha256(Buffer.concat([kept, last])),
        bytes: MIN_MULTIPART_PART_BYTES + 10,
      });
    });

    const abortGap = options.backendGaps?.multipartAbort;
    if (abortGap === undefined) {
      it('cannot complete a multipart upload once it is aborted', async () => {
        const key = `${uniquePrefix()}/aborted.bin`;
        const { uploadId } = await store().createMultipartUpload({ key });
        const part = await store().uploadPart({ key, uploadId, partNumber: 1, body: Buffer.from('never joined') });

        await store().abortMultipartUpload({ key, uploadId });

        await expect(store().completeMultipartUpload({ key, uploadId, parts: [part] })).rejects.toThrow(/does not exist/);
        expect(await store().head({ key })).toBeUndefined();
        await expect(store().abortMultipartUpload({ key, uploadId })).resolves.toBeUndefined();
      });
    } else {
      it(`reports that the backend cannot abort a multipart upload (${abortGap})`, async () => {
        const key = `${uniquePrefix()}/aborted.bin`;
        const { uploadId } = await store().createMultipartUpload({ key });
        await store().uploadPart({ key, uploadId, partNumber: 1, body: Buffer.from('never joined') });

        await expect(store().abortMultipartUpload({ key, uploadId })).rejects.toThrow();
      });
    }

    it('rejects keys that are not relative slash-separated paths with InvalidBlobKeyError', async () => {
      const operations: Array<[string, (key: string) => Promise<unknown>]> = [
        ['put', (key) => store().put({ key, body: Buffer.from('x') })],
        ['get', (key) => store().get({ key })],
        ['head', (key) => store().head({ key })],
        ['delete', (key) => store().delete({ key })],
        ['createMultipartUpload', (key) => store().createMultipartUpload({ key })],
        ['uploadPart', (key) => store().uploadPart({ key, uploadId: 'upload', partNumber: 1, body: Buffer.from('x') })],
        [
          'completeMultipartUpload',
          (key) => store().completeMultipartUpload({ key, uploadId: 'upload', parts: [{ partNumber: 1, etag: '"x"' }] }),
        ],
        ['abortMultipartUpload', (key) => store().abortMultipartUpload({ key, uploadId: 'upload' })],
      ];
      for (const key of ['../x', '/abs', 'a//b', 'a/./b', 'a/../b', '']) {
        for (const [operation, run] of operations) {
          const error = await rejectionOf(run(key));
          expect({ key, operation, error }).toEqual({ key, operation, error: expect.any(InvalidBlobKeyError) });
        }
      }
    });

    it('leaves no blob, and the previous version intact, when the body stream fails midway', async () => {
      const prefix = uniquePrefix();
      const existingKey = `${prefix}/existing.bin`;
      const freshKey = `${prefix}/fresh.bin`;
      await store().put({ key: existingKey, body: Buffer.from('previous version') });

      // 6 MiB: past the first multipart part of a streamed S3 upload; 100 KiB: within it.
      await expect(store().put({ key: existingKey, body: failingBody(6 * MiB) })).rejects.toThrow('body source failed midway');
      await expect(store().put({ key: freshKey, body: failingBody(100 * 1024) })).rejects.toThrow('body source failed midway');

      expect((await readAll(await store().get({ key: existingKey }))).toString()).toBe('previous version');
      expect(await store().head({ key: freshKey })).toBeUndefined();
      expect((await collect(store().list({ prefix: `${prefix}/` }))).map((blob) => blob.key)).toEqual([existingKey]);
    });

    it('answers ping', async () => {
      await expect(store().ping()).resolves.toBeUndefined();
    });
  });
}

/** A stream of `totalBytes` random bytes; its sha256 is known once it has been read to the end. */
function randomBody(totalBytes: number): { body: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let digest: string | undefined;
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let remaining = totalBytes; remaining > 0;) {
      const chunk = randomBytes(Math.min(CHUNK_BYTES, remaining));
      hash.update(chunk);
      remaining -= chunk.length;
      yield chunk;
    }
    digest = hash.digest('hex');
  }
  return {
    body: Readable.from(chunks(), { objectMode: false }),
    sha256: () => {
      if (digest === undefined) throw new Error('the body was not read to its end');
      return digest;
    },
  };
}

/** A stream that yields `bytesBeforeFailure` bytes, then fails like a dropped client connection. */
function failingBody(bytesBeforeFailure: number): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let remaining = bytesBeforeFailure; remaining > 0; remaining -= CHUNK_BYTES) yield randomBytes(Math.min(CHUNK_BYTES, remaining));
    throw new Error('body source failed midway');
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** A buffer as a stream of small chunks, so adapters see a real stream. */
function streamOf(bytes: Buffer): Readable {
  function* chunks(): Generator<Buffer> {
    for (let offset = 0; offset < bytes.length; offset += CHUNK_BYTES) yield bytes.subarray(offset, offset + CHUNK_BYTES);
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** Recognisable bytes, so that a wrong range shows up as wrong content. */
function patternBytes(length: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, index) => (index * 31 + 7) % 251));
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function digestOf(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    const buffer = chunkToBuffer(chunk);
    hash.update(buffer);
    bytes += buffer.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunkToBuffer(chunk));
  return Buffer.concat(chunks);
}

async function collect(blobs: AsyncIterable<BlobInfo>): Promise<BlobInfo[]> {
  const collected: BlobInfo[] = [];
  for await (const blob of blobs) collected.push(blob);
  return collected;
}

/** The error a promise rejects with; fails when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}
