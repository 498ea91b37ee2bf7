import { AppError } from '../../errors/app-error.js';

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
