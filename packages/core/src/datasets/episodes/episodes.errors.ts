import { AppError } from '../../errors/app-error.js';
import type { EpisodeRecord } from './episodes.repository.js';

export const episodeNotFound = (datasetId: string, episodeIndex: number) =>
  new AppError({
    code: 'EPISODE_NOT_FOUND',
    kind: 'not_found',
    message: `dataset "${datasetId}" has no episode ${episodeIndex} that this caller may read`,
    details: { datasetId, episode: episodeIndex },
  });

export const episodeHeldOut = (datasetId: string, episodeIndex: number) =>
  new AppError({
    code: 'EPISODE_HELD_OUT',
    kind: 'forbidden',
    message: `episode ${episodeIndex} of dataset "${datasetId}" is held out for evaluation; only admins read its data`,
    details: { datasetId, episode: episodeIndex },
  });

export const videoFeatureNotFound = (datasetId: string, feature: string, videoFeatures: string[]) =>
  new AppError({
    code: 'VIDEO_FEATURE_NOT_FOUND',
    kind: 'not_found',
    message: `dataset "${datasetId}" has no video feature "${feature}"${videoFeatures.length > 0 ? ` (its video features: ${videoFeatures.join(', ')})` : ' (it has no video features)'}`,
    details: { datasetId, feature, videoFeatures },
  });

export const episodeVideoSplit = (datasetId: string, episodeIndex: number, feature: string, blobs: number) =>
  new AppError({
    code: 'EPISODE_VIDEO_SPLIT',
    kind: 'unprocessable',
    message: `the frames of ${feature} in episode ${episodeIndex} of dataset "${datasetId}" point to ${blobs} video files; one file per episode and feature can be served`,
    details: { datasetId, episode: episodeIndex, feature, files: blobs },
  });

/** A stored shard whose bytes no longer match what ingest recorded (500: the store, not the caller). */
export const shardCorrupt = (episode: EpisodeRecord, actual: string) =>
  new AppError({
    code: 'SHARD_CORRUPT',
    kind: 'internal',
    message: `episode ${episode.episodeIndex} in ${episode.shardKey} does not match the checksum recorded at ingest`,
    details: { shardKey: episode.shardKey, episode: episode.episodeIndex, expected: episode.checksum, actual },
  });

export const episodeIndexInvalid = (episodeIndex: string) =>
  new AppError({
    code: 'VALIDATION_FAILED',
    kind: 'invalid',
    message: `the episode index must be a non-negative integer, not "${episodeIndex}"`,
    location: { field: 'episodeIndex' },
  });
