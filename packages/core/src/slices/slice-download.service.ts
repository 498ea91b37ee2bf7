import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Inject, Injectable } from '@nestjs/common';
import type { RecordBatch } from 'apache-arrow';
import { arrowToParquet, batchesToMcap, batchesToNdjson, encodeArrowIpc, exportLerobotTar } from '@kura/formats';
import { sliceFormatExtensions, type FeatureSpec, type SliceFormat } from '@kura/schema';
import type { Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { readJsonBlob } from '../blobs/json-blobs.js';
import { ifNoneMatchHits, parseRange, resolveRange } from '../common/byte-range.js';
import { newId } from '../common/ids.js';
import type { KuraConfig } from '../config/config.js';
import { KURA_CONFIG } from '../database/database.tokens.js';
import { VersionsRepository } from '../datasets/versions.repository.js';
import { SliceReader, type DecodePlan } from './slice-reader.js';
import { SlicesService } from './slices.service.js';
import type { SliceRecord } from './slices.repository.js';
import { meteredBody } from '../usage/metered-body.js';
import { UsageMeter } from '../usage/usage.meter.js';

/**
 * Bumped whenever an encoder's output changes, so that ETags and cached downloads of the old bytes
 * are never served as the new ones.
 */
// 2: source episode ids (schema metadata `kura.source_episodes`, NDJSON `sourceEpisode`, LeRobot `source_episode`).
// 3: `lerobot` is LeRobot v3.0 (v2.1 is `lerobot-v2.1`).
export const DOWNLOAD_REVISION = 3;

const formats: Record<SliceFormat, { contentType: string; ranges: boolean }> = {
  arrow: { contentType: 'application/vnd.apache.arrow.stream', ranges: false },
  'arrow-file': { contentType: 'application/vnd.apache.arrow.file', ranges: true },
  parquet: { contentType: 'application/vnd.apache.parquet', ranges: true },
  ndjson: { contentType: 'application/x-ndjson', ranges: false },
  lerobot: { contentType: 'application/x-tar', ranges: true },
  'lerobot-v2.1': { contentType: 'application/x-tar', ranges: true },
  mcap: { contentType: 'application/x-mcap', ranges: true },
};

/** What the HTTP layer sends. */
export type SliceDownload =
  | { kind: 'not-modified'; etag: string }
  | {
      kind: 'bytes';
      etag: string;
      contentType: string;
      fileName: string;
      acceptsRanges: boolean;
      /** Size of the whole download when known before it is made. */
      totalBytes: number | undefined;
      /** Set for a 206 reply: the inclusive span sent. */
      range: { start: number; end: number } | undefined;
      body: Readable;
    };

export interface DownloadConditions {
  range?: string | undefined;
  ifRange?: string | undefined;
  ifNoneMatch?: string | undefined;
}

/**
 * Slice downloads in every format. Output is a pure function of the slice (and DOWNLOAD_REVISION),
 * so the ETag is known before a byte is made. `arrow` and `ndjson` stream straight from the shards;
 * `arrow-file`, `parquet` and `lerobot` — the formats whose readers seek — are also kept in the blob
 * store as they are first made, and served from there with `Range` afterwards, so an interrupted
 * download resumes without re-encoding.
 */
@Injectable()
export class SliceDownloadService {
  constructor(
    private readonly slices: SlicesService,
    private readonly reader: SliceReader,
    private readonly versions: VersionsRepository,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
    private readonly meter: UsageMeter,
  ) {}

  /** The download, its bytes metered to the caller's key as they are served. */
  async download(principal: Principal, sliceId: string, format: SliceFormat, conditions: DownloadConditions): Promise<SliceDownload> {
    const download = await this.prepare(principal, sliceId, format, conditions);
    if (download.kind === 'not-modified') return download;
    const keyId = principal.kind === 'key' ? principal.keyId : 'anonymous';
    return { ...download, body: meteredBody(download.body, (bytes) => this.meter.record(keyId, { bytesServed: bytes })) };
  }

  private async prepare(
    principal: Principal,
    sliceId: string,
    format: SliceFormat,
    conditions: DownloadConditions,
  ): Promise<SliceDownload> {
    const slice = await this.slices.findReadable(principal, sliceId);
    const spec = formats[format];
    const etag = `"${slice.id}.${format}.r${DOWNLOAD_REVISION}"`;
    if (ifNoneMatchHits(conditions.ifNoneMatch, etag)) {
      return { kind: 'not-modified', etag };
    }
    const base = {
      kind: 'bytes' as const,
      etag,
      contentType: spec.contentType,
      fileName: `${slice.id}.${sliceFormatExtensions[format]}`,
      acceptsRanges: spec.ranges,
    };
    // A Range with a stale If-Range gets the whole download (RFC 9110 §13.1.5).
    const rangeHeader =
      spec.ranges && conditions.range !== undefined && (conditions.ifRange === undefined || conditions.ifRange === etag)
        ? conditions.range
        : undefined;
    const requested = rangeHeader !== undefined ? parseRange(rangeHeader) : undefined;

    if (!spec.ranges) {
      const made = await this.make(slice, format);
      return { ...base, totalBytes: made.bytes, range: undefined, body: streamOf(made.chunks) };
    }
    // The format's name as well as its extension: `lerobot` and `lerobot-v2.1` are both `.tar`.
    const cacheKey = `slices/${slice.id}/download.r${DOWNLOAD_REVISION}.${format}.${sliceFormatExtensions[format]}`;
    let cached = await this.blobs.head({ key: cacheKey });
    if (!cached && requested) {
      await this.makeIntoCache(slice, format, cacheKey);
      cached = await this.blobs.head({ key: cacheKey });
    }
    if (cached) {
      const span = requested ? resolveRange(requested, cached.bytes, rangeHeader!) : undefined;
      const body = await this.blobs.get({
        key: cacheKey,
        ...(span ? { range: { offset: span.start, length: span.end - span.start + 1 } } : {}),
      });
      return { ...base, totalBytes: cached.bytes, range: span, body };
    }
    // First download: stream it while keeping a copy for the next (ranged) request.
    return { ...base, totalBytes: undefined, range: undefined, body: streamOf(this.teeIntoCache(slice, format, cacheKey)) };
  }

  private async *teeIntoCache(slice: SliceRecord, format: SliceFormat, cacheKey: string): AsyncGenerator<Uint8Array> {
    const { path, directory } = await this.workFile(slice);
    const file = createWriteStream(path);
    let complete = false;
    try {
      for await (const chunk of (await this.make(slice, format)).chunks) {
        if (!file.write(chunk)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
        yield chunk;
      }
      await new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve())));
      complete = true;
      await this.store(cacheKey, path);
    } finally {
      if (!complete) file.destroy();
      await rm(directory, { recursive: true, force: true });
    }
  }

  private async makeIntoCache(slice: SliceRecord, format: SliceFormat, cacheKey: string): Promise<void> {
    const { path, directory } = await this.workFile(slice);
    try {
      await pipeline(Readable.from((await this.make(slice, format)).chunks), createWriteStream(path));
      await this.store(cacheKey, path);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }

  private async store(key: string, path: string): Promise<void> {
    if (this.blobs.adoptFile) await this.blobs.adoptFile({ key, path });
    else await this.blobs.put({ key, body: createReadStream(path) });
  }

  private async workFile(slice: SliceRecord): Promise<{ path: string; directory: string }> {
    const { directory } = await this.workFolder();
    return { directory, path: join(directory, slice.id) };
  }

  private async workFolder(): Promise<{ directory: string }> {
    const directory = join(this.config.dataDir, 'work', 'downloads', newId('dl'));
    await mkdir(directory, { recursive: true });
    return { directory };
  }

  /** The download's bytes, made from the shards. */
  async make(slice: SliceRecord, format: SliceFormat): Promise<{ bytes: number | undefined; chunks: AsyncIterable<Uint8Array> }> {
    const plan = await this.reader.plan(slice, { forward: format === 'arrow' });
    if (plan.kind === 'forward') return { bytes: plan.bytes, chunks: plan.chunks() };
    const decoded = plan;
    const batches = () => flattenBatches(decoded);
    switch (format) {
      case 'arrow':
      case 'arrow-file':
        return {
          bytes: undefined,
          chunks: encodeArrowIpc({ schema: decoded.schema, batches: batches(), kind: format === 'arrow' ? 'stream' : 'file' }),
        };
      case 'parquet':
        return { bytes: undefined, chunks: arrowToParquet({ schema: decoded.schema, batches: batches() }) };
      case 'ndjson':
        return { bytes: undefined, chunks: batchesToNdjson({ schema: decoded.schema, batches: batches() }) };
      case 'mcap':
        return { bytes: undefined, chunks: batchesToMcap({ schema: decoded.schema, batches: batches() }) };
      case 'lerobot':
      case 'lerobot-v2.1': {
        const manifest = await this.firstManifest(slice);
        // v3.0 spools each data file before it goes into the tar (a tar entry's size comes first).
        const scratch = format === 'lerobot' ? (await this.workFolder()).directory : undefined;
        const features: FeatureSpec = Object.fromEntries(
          slice.columns.flatMap((column) => (column.feature ? [[column.name, column.feature]] : [])),
        );
        const chunks = exportLerobotTar({
          version: format === 'lerobot' ? 'v3.0' : 'v2.1',
          ...(scratch ? { scratch } : {}),
          features,
          // Every stride-th step is kept, so the exported frames come that much less often.
          fps: manifest.fps / (slice.steps?.stride ?? 1),
          robotType: manifest.robotType,
          mtime: slice.createdAt,
          episodes: episodesOf(decoded),
          openVideo: async (blobKey: string) => {
            const info = await this.blobs.head({ key: blobKey });
            if (!info) throw new Error(`video blob ${blobKey} is missing`);
            return { bytes: info.bytes, stream: await this.blobs.get({ key: blobKey }) };
          },
        });
        return { bytes: undefined, chunks: scratch ? removedAfter(chunks, scratch) : chunks };
      }
    }
  }

  private async firstManifest(slice: SliceRecord): Promise<{ fps: number; robotType: string }> {
    const source = slice.sources[0]!;
    const version = await this.versions.find(source.datasetId, source.version);
    if (!version) throw new Error(`version ${source.version} of ${source.datasetId} is gone`);
    const manifest = (await readJsonBlob(this.blobs, version.manifestKey)) as {
      fps?: number;
      embodiment?: { robotType?: string; controlFrequencyHz?: number };
    };
    return {
      fps: manifest.fps ?? manifest.embodiment?.controlFrequencyHz ?? 30,
      robotType: manifest.embodiment?.robotType ?? 'unknown',
    };
  }
}

/**
 * A readable over generated chunks that pulls at most two ahead of the client: chunks can be a MiB
 * each, and Readable.from's default of 16 would hold 16 MiB per slow download.
 */
const streamOf = (chunks: AsyncIterable<Uint8Array>) => Readable.from(chunks, { objectMode: true, highWaterMark: 2 });

/** The chunks, then the folder removed, however the reader ends (done, stopped early or failed). */
async function* removedAfter(chunks: AsyncIterable<Uint8Array>, directory: string): AsyncGenerator<Uint8Array> {
  try {
    yield* chunks;
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

async function* flattenBatches(plan: DecodePlan): AsyncGenerator<RecordBatch> {
  for await (const { batches } of plan.episodes()) yield* batches;
}

async function* episodesOf(plan: DecodePlan): AsyncGenerator<{ batches: RecordBatch[]; sourceEpisode: string }> {
  for await (const { item, batches } of plan.episodes()) yield { batches, sourceEpisode: item.episode.sourceEpisode };
}
