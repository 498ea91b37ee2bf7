import jpeg from 'jpeg-js';
import { isFinishedUpload } from '@kura/schema';
import { bearer, eventually, type TestApp } from './app.js';

// jpeg-js takes ~60 ms per call, so each shade is encoded once.
const jpegByShade = new Map<number, string>();
export function tinyJpeg(shade: number): string {
  const cached = jpegByShade.get(shade % 256);
  if (cached) return cached;
  const encoded = Buffer.from(jpeg.encode({ width: 8, height: 6, data: Buffer.alloc(8 * 6 * 4, shade % 256) }, 90).data).toString('base64');
  jpegByShade.set(shade % 256, encoded);
  return encoded;
}

/** The state value every seeded dataset has at (episode, step, component): easy to check after any slicing. */
export const stateValue = (episode: number, step: number, component: number) => episode * 1000 + step + component / 10;

export interface SeedOptions {
  episodes: number;
  /** Steps per episode; a function gives episodes different lengths. */
  length: number | ((episode: number) => number);
  firstEpisode?: number;
  stateDims?: number;
  /** Observation key of the state vector (observation.<key>). */
  stateKey?: string;
  task?: (episode: number) => string;
  images?: boolean;
  /** Marks the last step terminal with reward 1 for these episodes (success). */
  success?: (episode: number) => boolean;
}

/** Kura NDJSON episodes with values from `stateValue`. */
export function seedNdjson(options: SeedOptions): string {
  const lines: string[] = [];
  for (let offset = 0; offset < options.episodes; offset++) {
    const episode = (options.firstEpisode ?? 0) + offset;
    const length = typeof options.length === 'number' ? options.length : options.length(episode);
    for (let step = 0; step < length; step++) {
      const last = step === length - 1;
      const observation: Record<string, unknown> = {
        [options.stateKey ?? 'state']: Array.from({ length: options.stateDims ?? 3 }, (_, component) =>
          stateValue(episode, step, component),
        ),
      };
      if (options.images) observation['images.front'] = { jpeg: tinyJpeg(step * 10) };
      lines.push(
        JSON.stringify({
          episode,
          step,
          timestamp: step * 0.1,
          observation,
          action: [step, -episode],
          reward: last && options.success?.(episode) ? 1 : 0,
          ...(last && options.success ? { isTerminal: true, success: options.success(episode) } : {}),
          language: options.task ? options.task(episode) : `pick cube ${episode}`,
        }),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

let counter = 0;

/** What POST /v1/robots takes. */
export interface RobotFields {
  name: string;
  robotType: string;
  controlFrequencyHz: number;
  actionSpace: string;
}

/** Creates a robot of the operator's; returns its id. */
export async function createRobot(
  kura: TestApp,
  operatorKey: string,
  robot: RobotFields = { name: 'arm', robotType: 'so101', controlFrequencyHz: 10, actionSpace: 'joint_position' },
): Promise<string> {
  const response = await kura.request.post('/v1/robots').set(bearer(operatorKey)).send(robot);
  if (response.status !== 201) throw new Error(`robot: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.id as string;
}

/** The default robot of the operator's (created once per key). */
const robots = new Map<string, string>();
async function robotOf(kura: TestApp, operatorKey: string): Promise<string> {
  const known = robots.get(operatorKey);
  if (known) return known;
  const robotId = await createRobot(kura, operatorKey);
  robots.set(operatorKey, robotId);
  return robotId;
}

/** Creates a dataset of the operator's, on `robotId` or on the operator's default robot. */
export async function createDataset(
  kura: TestApp,
  operatorKey: string,
  access: 'public' | 'sample' | 'private' = 'public',
  robotId?: string,
): Promise<string> {
  const response = await kura.request
    .post('/v1/datasets')
    .set(bearer(operatorKey))
    .send({ name: `ds-${Date.now()}-${counter++}`, robotId: robotId ?? (await robotOf(kura, operatorKey)), access });
  if (response.status !== 201) throw new Error(`dataset: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.id as string;
}

export interface UploadOptions {
  /** Appended to the upload URL, with its `?`. */
  query?: string;
  contentType?: string;
  timeoutMs?: number;
}

/** Waits until an upload is published, failed or needs a mapping; returns it as GET /v1/uploads/:id shows it. */
export function waitForUpload(kura: TestApp, operatorKey: string, uploadId: string, timeoutMs = 60_000) {
  return eventually(async () => {
    const response = await kura.request.get(`/v1/uploads/${uploadId}`).set(bearer(operatorKey));
    return isFinishedUpload(response.body.status) ? response.body : undefined;
  }, timeoutMs);
}

/** POSTs an upload (202 expected) and waits until it is published or failed; returns the settled upload. */
export async function uploadAndWait(
  kura: TestApp,
  operatorKey: string,
  datasetId: string,
  body: string | Buffer,
  options: UploadOptions = {},
) {
  const accepted = await kura.request
    .post(`/v1/datasets/${datasetId}/uploads${options.query ?? ''}`)
    .set(bearer(operatorKey))
    .set('Content-Type', options.contentType ?? 'application/octet-stream')
    .send(typeof body === 'string' ? Buffer.from(body) : body);
  if (accepted.status !== 202) throw new Error(`upload: ${accepted.status} ${JSON.stringify(accepted.body)}`);
  return waitForUpload(kura, operatorKey, accepted.body.id as string, options.timeoutMs);
}

/** Uploads Kura NDJSON and waits until it is published; returns the upload. */
export async function publish(
  kura: TestApp,
  operatorKey: string,
  datasetId: string,
  body: string,
): Promise<{ id: string; version: number }> {
  const done = await uploadAndWait(kura, operatorKey, datasetId, body, {
    query: '?format=kura-ndjson',
    contentType: 'application/x-ndjson',
    timeoutMs: 30_000,
  });
  if (done.status !== 'published') throw new Error(`upload failed: ${JSON.stringify(done.errors)}`);
  return { id: done.id, version: done.version };
}

/** A dataset with published episodes. */
export async function seedDataset(
  kura: TestApp,
  operatorKey: string,
  options: SeedOptions & { access?: 'public' | 'sample' | 'private' },
): Promise<{ datasetId: string; uploadId: string }> {
  const datasetId = await createDataset(kura, operatorKey, options.access);
  const upload = await publish(kura, operatorKey, datasetId, seedNdjson(options));
  return { datasetId, uploadId: upload.id };
}
