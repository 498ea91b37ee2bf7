import {
  buildEpisode,
  exportPlan,
  infoFeatures,
  singleVideoBlob,
  type ExportState,
  type FeaturePlan,
  type LerobotExportParams,
} from './export-episode.js';
import { writeDatasetV3 } from './export-v3.js';
import { concat, fileHeader, streamTar, writeEntry, writeStreamEntry, type Pack } from './tar.js';
import { arrowToParquet } from '../parquet/export.js';

export type { LerobotExportEpisode, LerobotExportParams } from './export-episode.js';

/** LeRobot v2.x path templates (info.json `data_path`, `video_path`); the importer fills the same ones. */
export const LEROBOT_DATA_PATH = 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet';
export const LEROBOT_VIDEO_PATH = 'videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4';
/** Episodes per chunk folder. */
export const LEROBOT_CHUNKS_SIZE = 1000;

/**
 * Writes Kura episodes as a LeRobot dataset in a `.tar` stream: v3.0 (export-v3.ts), or v2.1: `data/chunk-XXX/episode_XXXXXX.parquet`
 * and `videos/chunk-XXX/<key>/episode_XXXXXX.mp4` per episode, then `meta/info.json`,
 * `meta/episodes.jsonl`, `meta/tasks.jsonl` and `meta/episodes_stats.jsonl` at the end (tasks and
 * totals are known only then). The mapping is in README.md beside this file ("Export").
 *
 * Memory: one episode (its batches, its parquet file, its statistics) plus one line of
 * metadata per episode. The same input gives the same bytes. Errors are ExportError:
 * `LEROBOT_EXPORT_COLUMN_MISSING`, `LEROBOT_EXPORT_VIDEO_SPLIT`, `LEROBOT_EXPORT_VIDEO_SIZE`.
 */
export function exportLerobotTar(params: LerobotExportParams): AsyncIterable<Uint8Array> {
  if (!(params.fps > 0)) throw new RangeError(`fps must be positive, not ${params.fps}`);
  if (Number.isNaN(params.mtime.getTime())) throw new RangeError('mtime is not a valid date');
  // One plain name: nothing that could climb out of the extraction folder or hide the dataset.
  if (params.folder !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(params.folder))
    throw new RangeError(`folder must be one plain folder name, not ${JSON.stringify(params.folder)}`);
  if (params.version === 'v3.0') {
    if (!params.scratch) throw new RangeError('a LeRobot v3.0 export needs a scratch folder');
    return streamTar((pack) => writeDatasetV3(pack, params, params.scratch!));
  }
  return streamTar((pack) => writeDataset(pack, params));
}

/** The v2.1 layout: a parquet file and an mp4 per episode, JSON-lines metadata at the end. */
async function writeDataset(pack: Pack, params: LerobotExportParams): Promise<void> {
  const folder = params.folder ? `${params.folder}/` : '';
  const plan = exportPlan(params.features);
  const state: ExportState = { tasks: new Map(), totalFrames: 0 };
  const episodeLines: string[] = [];
  const statsLines: string[] = [];
  const header = (name: string, size: number) => fileHeader(folder + name, size, params.mtime);

  let episodeIndex = 0;
  for await (const episode of params.episodes) {
    const batches = episode.batches.filter((batch) => batch.numRows > 0);
    // LeRobot has no empty episodes; skipping keeps the numbering contiguous.
    if (batches.length === 0) continue;
    const chunk = Math.floor(episodeIndex / LEROBOT_CHUNKS_SIZE);
    const exported = buildEpisode({ batches, plan, episodeIndex, firstIndex: state.totalFrames, state });
    const parquet = await concat(arrowToParquet({ schema: exported.schema, batches: exported.batches }));
    await writeEntry(pack, header(fillPath(LEROBOT_DATA_PATH, { chunk, episodeIndex }), parquet.byteLength), parquet);

    for (const { name } of plan.filter((feature) => feature.kind === 'video')) {
      const blobKey = singleVideoBlob(batches, name, episodeIndex);
      const video = await params.openVideo(blobKey);
      await writeStreamEntry(
        pack,
        header(fillPath(LEROBOT_VIDEO_PATH, { chunk, episodeIndex, videoKey: name }), video.bytes),
        video.stream,
        blobKey,
      );
    }

    state.totalFrames += exported.length;
    episodeLines.push(
      JSON.stringify({
        episode_index: episodeIndex,
        tasks: exported.tasks,
        length: exported.length,
        kura_episode_index: exported.origin.episodeIndex,
        ...(exported.origin.datasetId !== undefined ? { kura_dataset_id: exported.origin.datasetId } : {}),
        ...(episode.sourceEpisode !== undefined ? { source_episode: episode.sourceEpisode } : {}),
      }),
    );
    statsLines.push(JSON.stringify({ episode_index: episodeIndex, stats: exported.stats }));
    episodeIndex++;
  }

  const jsonLines = (lines: string[]) => Buffer.from(lines.map((line) => `${line}\n`).join(''));
  const info = Buffer.from(JSON.stringify(infoJson(params, plan, state, episodeIndex), null, 4));
  const tasks = jsonLines([...state.tasks].map(([task, taskIndex]) => JSON.stringify({ task_index: taskIndex, task })));
  const entries: Array<[string, Buffer]> = [
    ['meta/info.json', info],
    ['meta/episodes.jsonl', jsonLines(episodeLines)],
    ['meta/tasks.jsonl', tasks],
    ['meta/episodes_stats.jsonl', jsonLines(statsLines)],
  ];
  for (const [name, bytes] of entries) await writeEntry(pack, header(name, bytes.byteLength), bytes);
}

function infoJson(params: LerobotExportParams, plan: FeaturePlan[], state: ExportState, episodes: number): Record<string, unknown> {
  const features = infoFeatures(params, plan, state);
  const videoKeys = plan.filter((feature) => feature.kind === 'video').length;
  return {
    codebase_version: 'v2.1',
    robot_type: params.robotType,
    total_episodes: episodes,
    total_frames: state.totalFrames,
    total_tasks: state.tasks.size,
    total_videos: episodes * videoKeys,
    total_chunks: Math.ceil(episodes / LEROBOT_CHUNKS_SIZE),
    chunks_size: LEROBOT_CHUNKS_SIZE,
    fps: params.fps,
    splits: { train: `0:${episodes}` },
    data_path: LEROBOT_DATA_PATH,
    video_path: videoKeys > 0 ? LEROBOT_VIDEO_PATH : null,
    features,
  };
}
function fillPath(template: string, values: { chunk: number; episodeIndex: number; videoKey?: string }): string {
  return template
    .replace('{episode_chunk:03d}', String(values.chunk).padStart(3, '0'))
    .replace('{episode_index:06d}', String(values.episodeIndex).padStart(6, '0'))
    .replace('{video_key}', values.videoKey ?? '');
}
