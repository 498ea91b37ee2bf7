import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordBatchReader, type RecordBatch, type Schema } from 'apache-arrow';
import type { FeatureSpec } from '@kura/schema';
import { writeShard, type ShardEpisode } from '../kura-arrow/shard-writer.js';

/**
 * Kura record batches as the storage holds them: the episodes go through `writeShard` into a real
 * shard file, which is read back with apache-arrow. One batch per episode (or per ≤ 1000 steps).
 */
export async function shardBatches(params: {
  features: FeatureSpec;
  episodes: ShardEpisode[];
}): Promise<{ schema: Schema; batches: RecordBatch[] }> {
  const folder = await mkdtemp(join(tmpdir(), 'kura-shard-'));
  try {
    const path = join(folder, 'shard.arrow');
    await writeShard({ path, features: params.features, episodes: params.episodes });
    const reader = RecordBatchReader.from(await readFile(path)).open();
    // The schema is read with the file's header; it is gone once the reader has been drained.
    const schema = reader.schema;
    return { schema, batches: [...reader] };
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** Collects an async stream of byte chunks into one buffer. */
export async function collectBytes(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}
