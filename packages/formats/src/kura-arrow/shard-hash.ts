import { createHash, hash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

// Its own module, with nothing else of the package: the shard hashing thread loads only this
// (`@kura/formats/shard-hash`), not every importer.

/** Where an episode ended up in the shard file. */
export interface EpisodeRange {
  episodeIndex: number;
  batchStart: number;
  batchCount: number;
  /** Byte range of its record batches (metadata and bodies), contiguous in the file. */
  byteOffset: number;
  byteLength: number;
}

/** Hashes of a shard file: of the whole file, and of each episode's byte range. */
export interface ShardHashes {
  sha256: string;
  checksums: string[];
}

/** The hashes writeShard gives, of a shard file written by writeShardUnhashed (shard-writer.ts): one read of the file. */
export async function hashShard(path: string, episodes: readonly EpisodeRange[]): Promise<ShardHashes> {
  const fileHash = createHash('sha256');
  const checksums: string[] = [];
  let index = 0;
  let position = 0;
  // The hash of an episode that crosses a chunk boundary, while its first part is hashed.
  let partial: Hash | undefined;
  for await (const data of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    const chunk = data as Buffer;
    fileHash.update(chunk);
    // The parts of the chunk inside episode ranges (ranges are ascending and do not overlap).
    let offset = 0;
    while (index < episodes.length && offset < chunk.length) {
      const { byteOffset, byteLength } = episodes[index]!;
      const start = Math.max(offset, byteOffset - position);
      const end = Math.min(chunk.length, byteOffset + byteLength - position);
      if (start >= chunk.length) break;
      const complete = position + end >= byteOffset + byteLength;
      if (!partial && complete) {
        // The whole episode is in this chunk: one-shot, 3× cheaper than a Hash object for short episodes.
        checksums.push(hash('sha256', chunk.subarray(start, end), 'hex'));
      } else {
        partial ??= createHash('sha256');
        if (end > start) partial.update(chunk.subarray(start, end));
        if (!complete) break;
        checksums.push(partial.digest('hex'));
        partial = undefined;
      }
      index++;
      offset = end;
    }
    position += chunk.length;
  }
  if (index !== episodes.length) throw new Error(`${path} ends before the byte range of its episode ${episodes[index]!.episodeIndex}`);
  return { sha256: fileHash.digest('hex'), checksums };
}
