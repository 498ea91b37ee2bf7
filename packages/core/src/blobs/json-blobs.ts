import type { BlobStore } from './blob-store.js';

/** Reads a small JSON blob (a manifest, statistics). */
export async function readJsonBlob(blobs: BlobStore, key: string): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of await blobs.get({ key })) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
}

/** Writes a small JSON blob. */
export async function writeJsonBlob(blobs: BlobStore, key: string, value: unknown): Promise<void> {
  await blobs.put({ key, body: Buffer.from(JSON.stringify(value)), contentType: 'application/json' });
}
