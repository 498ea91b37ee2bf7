// An episode's rows: a one-episode slice (POST /v1/slices), downloaded as Kura NDJSON and decoded
// once into columns — numbers per component, camera frames as Blobs (drawn later from object URLs /
// ImageBitmaps), video frames as their time in the episode's mp4.
import { api, ApiError, enc, request, type Dataset, type Episode, type Page, type Slice } from '../api';
import type { StepLine } from '@kura/schema';
import { componentNames, isNumeric } from '../features';

export interface VectorTrack {
  name: string;
  components: string[];
  /** One column per component. */
  values: Float64Array[];
}

export interface ImageTrack {
  name: string;
  /** One encoded frame per step (null when a line had none). */
  frames: Array<Blob | null>;
}

export interface VideoTrack {
  name: string;
  /** The frame's position in the episode's video file, per step (seconds). */
  times: Float64Array;
  /** Where the mp4 is served (with Range). */
  url: string;
}

export interface EpisodeData {
  episode: Episode;
  length: number;
  /** Seconds from the episode's start, per step. */
  timestamps: Float64Array;
  stepIndices: Int32Array;
  task: string | null;
  vectors: VectorTrack[];
  images: ImageTrack[];
  videos: VideoTrack[];
  sliceId: string;
}

export interface LoadProgress {
  steps: number;
  expected: number;
  bytes: number;
}

export async function loadEpisode(params: {
  dataset: Dataset;
  episodeIndex: number;
  onProgress: (progress: LoadProgress) => void;
  signal: AbortSignal;
}): Promise<EpisodeData> {
  const { dataset, episodeIndex } = params;
  const listed = await api<Page<Episode>>(`/v1/datasets/${enc(dataset.id)}/episodes?episodes=${episodeIndex}&limit=1`);
  const episode = listed.items[0];
  if (!episode || episode.episodeIndex !== episodeIndex) {
    throw new ApiError(
      404,
      'EPISODE_NOT_FOUND',
      `dataset "${dataset.name}" has no episode ${episodeIndex}${dataset.access === 'public' ? '' : ' that this caller may read'}`,
    );
  }
  const { slice, response } = await episodeRows(dataset, episode, params.signal);
  const decoder = new EpisodeDecoder(dataset, episode);
  let bytes = 0;
  let pending = '';
  const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
  if (!reader) throw new ApiError(0, 'VIEWER_ERROR', 'the slice download has no body');
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.length;
    pending += value;
    let start = 0;
    for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n', start)) {
      if (end > start) decoder.add(JSON.parse(pending.slice(start, end)) as StepLine);
      start = end + 1;
    }
    pending = pending.slice(start);
    params.onProgress({ steps: decoder.length, expected: slice.stepCount, bytes });
  }
  if (pending.trim()) decoder.add(JSON.parse(pending) as StepLine);
  return decoder.finish(slice.id);
}

const sliceCacheKey = (datasetId: string, version: number, episodeIndex: number) => `kura.slice:${datasetId}@${version}#${episodeIndex}`;

/**
 * The episode's rows as an NDJSON response. A slice id is kept for the browser session, so coming
 * back to an episode reuses it (and the browser's cache, by ETag) instead of making another slice.
 */
async function episodeRows(dataset: Dataset, episode: Episode, signal: AbortSignal): Promise<{ slice: Slice; response: Response }> {
  const cacheKey = sliceCacheKey(dataset.id, dataset.latestVersion, episode.episodeIndex);
  const cached = sessionStorage.getItem(cacheKey);
  if (cached) {
    try {
      const slice = JSON.parse(cached) as Slice;
      return { slice, response: await request(`/v1/slices/${enc(slice.id)}/data?format=ndjson`, { signal }) };
    } catch {
      // Gone, or made with another key: make a new one.
      sessionStorage.removeItem(cacheKey);
    }
  }
  let slice: Slice;
  try {
    slice = await api<Slice>('/v1/slices', {
      method: 'POST',
      json: { sources: [{ datasetId: dataset.id, version: dataset.latestVersion }], episodes: String(episode.episodeIndex) },
      signal,
    });
  } catch (error) {
    throw explainEmptySlice(error, episode);
  }
  sessionStorage.setItem(cacheKey, JSON.stringify({ id: slice.id, episodeCount: slice.episodeCount, stepCount: slice.stepCount }));
  return { slice, response: await request(`/v1/slices/${enc(slice.id)}/data?format=ndjson`, { signal }) };
}

/** A slice that selects nothing says why (`withheld`): held out for evaluation, or past a sample dataset's public part. */
function explainEmptySlice(error: unknown, episode: Episode): unknown {
  if (!(error instanceof ApiError) || error.code !== 'EMPTY_SELECTION') return error;
  const withheld = error.details?.withheld as { heldOut?: number; grantRequired?: number } | undefined;
  if (withheld?.heldOut) {
    return new ApiError(
      403,
      'EPISODE_HELD_OUT',
      `episode ${episode.episodeIndex} is held out for evaluating policies: only admin keys may read its steps`,
      error.details,
    );
  }
  if (withheld?.grantRequired) {
    return new ApiError(
      403,
      'GRANT_REQUIRED',
      `episode ${episode.episodeIndex} is past this dataset's public sample: it needs a key with a grant`,
      error.details,
    );
  }
  return error;
}

type Kind = { kind: 'vector'; components: number } | { kind: 'image' } | { kind: 'video' } | { kind: 'other' };

function kindOf(value: unknown): Kind {
  if (typeof value === 'number' || typeof value === 'boolean') return { kind: 'vector', components: 1 };
  if (Array.isArray(value)) return { kind: 'vector', components: value.length };
  if (value !== null && typeof value === 'object') {
    if ('video' in value) return { kind: 'video' };
    if ('jpeg' in value || 'png' in value) return { kind: 'image' };
  }
  return { kind: 'other' };
}

const asNumber = (value: unknown): number => (typeof value === 'number' ? value : value === true ? 1 : value === false ? 0 : NaN);

function base64Bytes(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

/** Columns from lines, built as the download streams (each image is turned into a Blob once, and its base64 dropped). */
class EpisodeDecoder {
  length = 0;
  private readonly timestamps: number[] = [];
  private readonly stepIndices: number[] = [];
  private task: string | null = null;
  private readonly vectors = new Map<string, number[][]>();
  private readonly images = new Map<string, Array<Blob | null>>();
  private readonly videos = new Map<string, number[]>();
  private readonly kinds = new Map<string, Kind>();

  constructor(
    private readonly dataset: Dataset,
    private readonly episode: Episode,
  ) {}

  add(line: StepLine): void {
    const row = this.length++;
    this.timestamps.push(line.timestamp ?? row);
    this.stepIndices.push(line.step ?? row);
    if (this.task === null && typeof line.language === 'string') this.task = line.language;
    if (Array.isArray(line.action) || typeof line.action === 'number') this.value('action', line.action, row);
    else if (line.action !== null && typeof line.action === 'object') {
      for (const [name, value] of Object.entries(line.action)) this.value(`action.${name}`, value, row);
    }
    for (const [name, value] of Object.entries(line.observation ?? {})) this.value(`observation.${name}`, value, row);
    for (const [name, value] of Object.entries(line.features ?? {})) this.value(name, value, row);
    if (typeof line.reward === 'number') this.value('reward', line.reward, row);
  }

  private value(name: string, value: unknown, row: number): void {
    let kind = this.kinds.get(name);
    if (!kind) {
      kind = kindOf(value);
      this.kinds.set(name, kind);
    }
    switch (kind.kind) {
      case 'vector': {
        let columns = this.vectors.get(name);
        if (!columns) {
          columns = Array.from({ length: kind.components }, () => new Array<number>(row).fill(NaN));
          this.vectors.set(name, columns);
        }
        const values = Array.isArray(value) ? value : [value];
        for (const [component, column] of columns.entries()) column[row] = asNumber(values[component]);
        return;
      }
      case 'image': {
        let frames = this.images.get(name);
        if (!frames) this.images.set(name, (frames = new Array<Blob | null>(row).fill(null)));
        const image = value as { jpeg?: string; png?: string };
        const encoded = image.jpeg ?? image.png;
        frames[row] = encoded ? new Blob([base64Bytes(encoded)], { type: image.jpeg ? 'image/jpeg' : 'image/png' }) : null;
        return;
      }
      case 'video': {
        let times = this.videos.get(name);
        if (!times) this.videos.set(name, (times = new Array<number>(row).fill(NaN)));
        times[row] = asNumber((value as { video: { timestamp?: unknown } }).video.timestamp);
        return;
      }
      case 'other':
        return;
    }
  }

  finish(sliceId: string): EpisodeData {
    const features = this.dataset.features ?? {};
    const pad = <T>(values: T[], fill: T) => {
      while (values.length < this.length) values.push(fill);
      return values;
    };
    const vectors: VectorTrack[] = [...this.vectors].map(([name, columns]) => {
      const feature = features[name];
      const named = feature && isNumeric(feature) ? componentNames(name, feature) : [];
      return {
        name,
        components: columns.map((_, index) => named[index] ?? (columns.length === 1 ? name : `${name}[${index}]`)),
        values: columns.map((column) => Float64Array.from(pad(column, NaN))),
      };
    });
    return {
      episode: this.episode,
      length: this.length,
      timestamps: Float64Array.from(this.timestamps),
      stepIndices: Int32Array.from(this.stepIndices),
      task: this.task ?? this.episode.task,
      vectors: sortTracks(vectors),
      images: sortTracks([...this.images].map(([name, frames]) => ({ name, frames: pad(frames, null) }))),
      videos: sortTracks(
        [...this.videos].map(([name, times]) => ({
          name,
          times: Float64Array.from(pad(times, NaN)),
          url: `/v1/datasets/${enc(this.dataset.id)}/episodes/${this.episode.episodeIndex}/videos/${enc(name)}`,
        })),
      ),
      sliceId,
    };
  }
}

/** Actions first, then observations, then the rest. */
function sortTracks<T extends { name: string }>(tracks: T[]): T[] {
  const rank = (name: string) => (name === 'action' || name.startsWith('action.') ? 0 : name.startsWith('observation.') ? 1 : 2);
  return tracks.sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
}
