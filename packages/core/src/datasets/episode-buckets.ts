import { hash } from 'node:crypto';

/**
 * Every episode falls in one of 100 buckets, from a hash of its dataset id and index. The bucket
 * never changes as versions grow, so the public sample and the held-out set are stable; the two use
 * opposite ends of the range, so they never overlap (an evaluation episode is never public data).
 * The migration that added the column computes the same value in SQL for episodes that existed.
 */
export function episodeBucket(datasetId: string, episodeIndex: number): number {
  // The first 4 bytes of the digest, big-endian. One-shot `hash` to hex is 3× faster than a Hash
  // object here, and an upload computes this once per episode.
  const first32Bits = Number.parseInt(hash('sha256', `${datasetId}:${episodeIndex}`, 'hex').slice(0, 8), 16);
  return Math.floor((first32Bits * 100) / 2 ** 32);
}

/** Buckets below this are the public part of a `sample` dataset (10 %). */
export const SAMPLE_BUCKET_LIMIT = 10;
/** Buckets from this on are held out for evaluation (10 %). */
export const HELD_OUT_BUCKET_START = 90;

export const isHeldOut = (bucket: number): boolean => bucket >= HELD_OUT_BUCKET_START;
