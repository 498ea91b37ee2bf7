import type { Readable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import type { EpisodeQuery, EpisodeView, Page } from '@kura/schema';
import type { Principal } from '../../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../../blobs/blob-store.js';
import { ifNoneMatchHits, parseRange, resolveRange } from '../../common/byte-range.js';
import { decodeNumberCursor, toPage } from '../../common/pagination.js';
import { DatasetsService } from '../datasets.service.js';
import { VersionsService } from '../versions.service.js';
import { isHeldOut, SAMPLE_BUCKET_LIMIT } from '../episode-buckets.js';
import { ShardReader } from './shard-reader.js';
import { meteredBody } from '../../usage/metered-body.js';
import { UsageMeter } from '../../usage/usage.meter.js';
import { EpisodesRepository, type EpisodeRecord } from './episodes.repository.js';
import { episodeHeldOut, episodeNotFound, episodeVideoSplit, videoFeatureNotFound } from './episodes.errors.js';

/** What the HTTP layer sends for an episode's video. */
export type EpisodeVideo =
  | { kind: 'not-modified'; etag: string }
  | {
      kind: 'bytes';
      etag: string;
      contentType: string;
      /** Size of the whole file. */
      totalBytes: number;
      /** Set for a 206 reply: the inclusive span sent. */
      range: { start: number; end: number } | undefined;
      body: Readable;
    };

export interface EpisodeVideoRequest {
  datasetId: string;
  episodeIndex: number;
  feature: string;
  range?: string | undefined;
  ifRange?: string | undefined;
  ifNoneMatch?: string | undefined;
}

/** Blob keys of (dataset, episode, feature): immutable once published, and read on every seek of a player. */
const BLOB_KEY_CACHE_SIZE = 2048;

/**
 * Episode-level reads that a slice does not cover: the video file a video feature's frames point
 * to (LeRobot mp4s are kept whole, never decoded; DESIGN "LeRobot videos"), served with `Range` so
 * a player can seek. Access follows the slice rules: the dataset's reach, the public part of a
 * `sample` dataset, and held-out episodes for admins only.
 */
@Injectable()
export class EpisodesService {
  private readonly blobKeys = new Map<string, string>();

  constructor(
    private readonly datasets: DatasetsService,
    private readonly versions: VersionsService,
    private readonly episodes: EpisodesRepository,
    private readonly shards: ShardReader,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly meter: UsageMeter,
  ) {}

  /**
   * A version's episodes by index (the latest version when none is named), filtered. Callers
   * without full access to a `sample` dataset see its public part only.
   */
  async list(principal: Principal, datasetId: string, query: EpisodeQuery): Promise<Page<EpisodeView>> {
    const { reach, version } = await this.versions.resolve(principal, datasetId, query.version);
    const fallbackIndex = reach.dataset.access === 'sample' ? await this.episodes.sampleFallbackIndex(datasetId) : undefined;
    const rows = await this.episodes.list({
      datasetId,
      version: version.version,
      episodes: query.episodes,
      task: query.task,
      success: query.success,
      minLength: query.minLength,
      maxLength: query.maxLength,
      uploadId: query.uploadId,
      sampleOnly: reach.episodes === 'sample' ? { fallbackIndex } : undefined,
      afterIndex: decodeNumberCursor(query.cursor),
      take: query.limit + 1,
    });
    return toPage(
      rows,
      query.limit,
      (row) => ({
        episodeIndex: row.episodeIndex,
        sourceEpisode: row.sourceEpisode,
        length: row.length,
        task: row.task,
        success: row.success,
        uploadId: row.uploadId,
        version: row.version,
        heldOut: isHeldOut(row.bucket),
        publicSample: reach.dataset.access === 'sample' && (row.bucket < SAMPLE_BUCKET_LIMIT || row.episodeIndex === fallbackIndex),
      }),
      (row) => row.episodeIndex,
    );
  }

  /** The mp4 of one episode's video feature (the file its frames' timestamps refer to), whole or a range of it. */
  async video(principal: Principal, request: EpisodeVideoRequest): Promise<EpisodeVideo> {
    const blobKey = await this.videoBlobKey(principal, request);
    // Video blobs are named by their sha256, so the name is a strong validator of the bytes.
    const etag = `"${blobKey.slice(blobKey.lastIndexOf('/') + 1)}"`;
    if (ifNoneMatchHits(request.ifNoneMatch, etag)) {
      return { kind: 'not-modified', etag };
    }
    const info = await this.blobs.head({ key: blobKey });
    if (!info) throw new Error(`video blob ${blobKey} of dataset ${request.datasetId} is missing from the blob store`);
    // A Range with a stale If-Range gets the whole file (RFC 9110 §13.1.5).
    const rangeHeader =
      request.range !== undefined && (request.ifRange === undefined || request.ifRange === etag) ? request.range : undefined;
    const span = rangeHeader !== undefined ? resolveRange(parseRange(rangeHeader), info.bytes, rangeHeader) : undefined;
    const body = await this.blobs.get({
      key: blobKey,
      ...(span ? { range: { offset: span.start, length: span.end - span.start + 1 } } : {}),
    });
    return {
      kind: 'bytes',
      etag,
      contentType: blobKey.endsWith('.mp4') ? 'video/mp4' : 'application/octet-stream',
      totalBytes: info.bytes,
      range: span,
      // Counted as sent, under the caller's key (`anonymous` without one), like slice downloads.
      body: meteredBody(body, (bytes) =>
        this.meter.record(principal.kind === 'key' ? principal.keyId : 'anonymous', { bytesServed: bytes }),
      ),
    };
  }

  private async videoBlobKey(principal: Principal, request: EpisodeVideoRequest): Promise<string> {
    const { datasetId, episodeIndex, feature } = request;
    const reach = await this.datasets.reach(principal, datasetId);
    const features = reach.dataset.features ?? {};
    if (features[feature]?.dtype !== 'video') {
      const videoFeatures = Object.keys(features).filter((name) => features[name]!.dtype === 'video');
      throw videoFeatureNotFound(datasetId, feature, videoFeatures);
    }
    const [episode] = await this.episodes.findByIndices(datasetId, [episodeIndex]);
    // Rows of a version being ingested are written before it is published.
    if (!episode || episode.version > reach.dataset.latestVersion) throw episodeNotFound(datasetId, episodeIndex);
    // The same rules as slices: past a `sample` dataset's public part it is not there for this caller
    // (the episode list does not show it either); held-out episodes are there but for admins only.
    if (reach.episodes === 'sample' && episode.bucket >= SAMPLE_BUCKET_LIMIT) {
      if (episode.episodeIndex !== (await this.episodes.sampleFallbackIndex(datasetId))) throw episodeNotFound(datasetId, episodeIndex);
    }
    if (isHeldOut(episode.bucket) && !reach.heldOut) throw episodeHeldOut(datasetId, episodeIndex);

    const cacheKey = `${datasetId}:${episodeIndex}:${feature}`;
    const cached = this.blobKeys.get(cacheKey);
    if (cached) return cached;
    const blobKey = await this.readBlobKey(datasetId, episode, feature);
    this.blobKeys.set(cacheKey, blobKey);
    if (this.blobKeys.size > BLOB_KEY_CACHE_SIZE) this.blobKeys.delete(this.blobKeys.keys().next().value!);
    return blobKey;
  }

  /** The one blob the episode's frames of `feature` point to, read from its shard. */
  private async readBlobKey(datasetId: string, episode: EpisodeRecord, feature: string): Promise<string> {
    const keys = new Set<string>();
    for (const batch of await this.shards.decode(episode)) {
      const column = batch.getChild(feature);
      if (!column) throw new Error(`episode ${episode.episodeIndex} of ${datasetId} has no column "${feature}" in ${episode.shardKey}`);
      for (let row = 0; row < batch.numRows; row++) keys.add((column.get(row) as { blob: string }).blob);
    }
    const [blobKey] = keys;
    if (keys.size !== 1 || blobKey === undefined) throw episodeVideoSplit(datasetId, episode.episodeIndex, feature, keys.size);
    return blobKey;
  }
}
