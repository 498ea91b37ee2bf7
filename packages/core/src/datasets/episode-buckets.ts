import { createHash } from 'node:crypto';

/**
 * Every episode falls in one of 100 buckets, from a hash of its dataset id and index. The bucket
 * never changes as versions grow, so the public sample and the held-out set are stable; the two use
 * opposite ends of the range, so they never overlap (an evaluation episode is never public data).
 * The migration that added the column computes the same value in SQL for episodes that existed.
 */
export function episodeBucket(datasetId: string, episodeIndex: number): number {
  const digest = createHash('sha256').update(`${datasetId}:${episodeIndex}`, 'utf8').digest();
  return Math.floor((digest.readUInt32BE(0) * 100) / 2 ** 32);
}

/** Buckets below this are the public part of a `sample` dataset (10 %). */
export const SAMPLE_BUCKET_LIMIT = 10;
/** Buckets from this on are held out for evaluation (10 %). */
export const HELD_OUT_BUCKET_START = 90;

export const isHeldOut = (bucket: number): boolean => bucket >= HELD_OUT_BUCKET_START;
