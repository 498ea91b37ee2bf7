import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { bearer, eventually, type TestApp } from './app.js';
import { tarGzOf } from './archives.js';

// Source: test/fixtures/lerobot_v2.1/unitree_g1 (YifanTian07/G1-policy-train @ d1d3bb45f16a, MIT; see
// SOURCES.md). Of its episodes only 29 has its camera's mp4 (AV1, 640×480, 221 frames at 30 fps), so an
// upload of episode 29 alone keeps the video feature.
const unitree = (path: string) => fileURLToPath(new URL(`../../test/fixtures/lerobot_v2.1/unitree_g1/${path}`, import.meta.url));

export const CAM_HIGH = 'observation.images.cam_high';
export const EPISODE_29_MP4 = `videos/chunk-000/${CAM_HIGH}/episode_000029.mp4`;
export const EPISODE_29_STEPS = 221;
export const G1_TASK = 'Pick up the yellow bottle on the table.';

export const episode29Mp4 = () => readFile(unitree(EPISODE_29_MP4));

/** A .tar.gz LeRobot upload of the unitree_g1 fixture's episode 29 with its mp4 (the other listed episodes are warnings). */
export async function unitreeEpisode29(): Promise<Buffer> {
  const files = [
    'meta/info.json',
    'meta/episodes.jsonl',
    'meta/episodes_stats.jsonl',
    'meta/tasks.jsonl',
    'data/chunk-000/episode_000029.parquet',
    EPISODE_29_MP4,
  ];
  const entries: Record<string, Buffer> = {};
  for (const file of files) entries[file] = await readFile(unitree(file));
  return tarGzOf(entries);
}

/** Uploads a LeRobot archive and waits until it is published (throws with its errors otherwise). */
export async function publishLerobot(
  kura: TestApp,
  operatorKey: string,
  datasetId: string,
  body: Buffer,
): Promise<{ id: string; version: number }> {
  const accepted = await kura.request
    .post(`/v1/datasets/${datasetId}/uploads?format=lerobot`)
    .set(bearer(operatorKey))
    .set('Content-Type', 'application/octet-stream')
    .send(body);
  if (accepted.status !== 202) throw new Error(`upload: ${accepted.status} ${JSON.stringify(accepted.body)}`);
  const done = await eventually(async () => {
    const response = await kura.request.get(`/v1/uploads/${accepted.body.id}`).set(bearer(operatorKey));
    return ['published', 'failed'].includes(response.body.status) ? response.body : undefined;
  }, 60_000);
  if (done.status !== 'published') throw new Error(`upload failed: ${JSON.stringify(done.errors)}`);
  return { id: done.id, version: done.version };
}
