import type { BlobStore, ByteRange } from './blob-store.js';
import { chunkToBuffer } from './stream-chunks.js';

/** A small blob, or a range of one, in memory (a manifest, a policy entry, a shard's prelude). */
export async function readBlobBytes(blobs: BlobStore, key: string, range?: ByteRange): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await blobs.get({ key, ...(range ? { range } : {}) })) chunks.push(chunkToBuffer(chunk));
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** Reads a small JSON blob (a manifest, statistics). */
export async function readJsonBlob(blobs: BlobStore, key: string): Promise<unknown> {
  return JSON.parse((await readBlobBytes(blobs, key)).toString('utf8')) as unknown;
}

/** Writes a small JSON blob. */
export async function writeJsonBlob(blobs: BlobStore, key: string, value: unknown): Promise<void> {
  await blobs.put({ key, body: Buffer.from(JSON.stringify(value)), contentType: 'application/json' });
}
