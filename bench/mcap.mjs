// `npm run bench -- mcap`: ROS 2 bag ingest. A generated robot bag (joints 100 Hz, Twist commands
// 30 Hz, a 160×120 noise PNG camera at 15 Hz that does not compress, 6 s episodes 2 s apart;
// packages/formats/src/mcap/robot-bag.ts) of ~50 MB at 1× and ~200 MB at 4× (KURA_BENCH_MCAP_MB),
// uploaded with a mapping to an embedded api and published. Baselines in the same run: `cp` of the
// file, and the reader alone (every message of the bag read and decoded in this process, no
// alignment, no shards). Memory: the api's peak RSS and the largest RSS of its children (the jailed
// ingest child) sampled every 50 ms.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bag } from '../packages/formats/dist/mcap/bag.js';
import { channelDecoder } from '../packages/formats/dist/mcap/decode.js';
import { IngestBudget } from '../packages/formats/dist/budget.js';
import { JOINTS, writeRobotBag } from '../packages/formats/dist/mcap/robot-bag.js';
import { peakRss, timeCp, upload } from './ingest.mjs';
import { startScratchApi } from './support.mjs';

const MB = 1e6;
const SECOND = 1_000_000_000n;
const FRAME = { width: 160, height: 120 };
const seconds = (started) => Number(process.hrtime.bigint() - started) / 1e9;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Episodes of 6 s, 2 s apart: about 5 MB of bag each (the camera's noise frames). */
function schedule(episodes) {
  return {
    episodes: Array.from({ length: episodes }, (_, index) => [BigInt(index) * 8n * SECOND, (BigInt(index) * 8n + 6n) * SECOND]),
    tasks: Array.from({ length: episodes }, (_, index) => `task ${index % 5}`),
    jointPeriod: 10_000_000n,
    commandRateHz: 30,
    cameraRateHz: 15,
    cameraOffset: 3_000_000n,
  };
}

const mapping = {
  rateHz: 15,
  splitGapS: 1,
  features: {
    'observation.state': { topic: '/joint_states', field: 'position', names: JOINTS },
    action: { topic: '/arm/command', field: ['linear.x', 'linear.y', 'linear.z', 'angular.x', 'angular.y', 'angular.z'] },
    'observation.images.front': { topic: '/camera/front/image_raw/compressed' },
  },
  task: { topic: '/task', field: 'data' },
};

/** Every process below `pid` (its children, theirs…), from /proc. */
async function descendants(pid) {
  const parents = new Map();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    const parent = /PPid:\s+(\d+)/.exec(status)?.[1];
    if (parent) parents.set(Number(entry), Number(parent));
  }
  const found = [];
  for (const [child] of parents) {
    for (let at = parents.get(child); at !== undefined && at > 1; at = parents.get(at))
      if (at === pid) {
        found.push(child);
        break;
      }
  }
  return found;
}

async function rssOf(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** The bag's upload: format mcap with the mapping as options. */
const uploadBag = (port, key, datasetId, path, bytes) =>
  upload(
    port,
    key,
    datasetId,
    path,
    bytes,
    new globalThis.URLSearchParams({ format: 'mcap', fileName: 'robot.mcap', options: JSON.stringify({ mapping }) }).toString(),
  );

/** The reader alone: every message read and decoded, nothing else. */
async function readAll(path, bytes) {
  const file = { path: 'robot.mcap', absolutePath: path, bytes };
  const started = process.hrtime.bigint();
  const bag = await Bag.open(file, new IngestBudget(bytes));
  const decoders = new Map();
  let messages = 0;
  for await (const message of bag.messages(undefined)) {
    let decoder = decoders.get(message.channel.id);
    if (!decoder) decoders.set(message.channel.id, (decoder = channelDecoder(message.channel, bag.schemaOf(message.channel))));
    if ('decode' in decoder) decoder.decode(message.data);
    messages++;
  }
  await bag.close();
  return { seconds: seconds(started), messages };
}

async function run(scale, episodesAt1x) {
  const scratch = await mkdtemp(join(tmpdir(), 'kura-bench-mcap-'));
  try {
    const path = join(scratch, 'robot.mcap');
    await writeRobotBag(path, { schedule: schedule(episodesAt1x * scale), frameSize: FRAME });
    const bytes = (await stat(path)).size;
    const cpSeconds = timeCp(path, scratch);
    const reader = await readAll(path, bytes);

    const kura = await startScratchApi('mcap');
    const pid = kura.api.child.pid;
    try {
      const { call } = kura;
      const robot = await call('/v1/robots', { name: 'bench', robotType: 'so101', controlFrequencyHz: 15, actionSpace: 'joint_position' });
      const datasetId = (await call('/v1/datasets', { name: `mcap-${scale}`, robotId: robot.id, access: 'private' })).id;
      await sleep(500);
      const idle = await peakRss(pid);
      let childPeak = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          for (const child of await descendants(pid)) childPeak = Math.max(childPeak, await rssOf(child));
          await sleep(50);
        }
      })();
      const started = process.hrtime.bigint();
      const accepted = await uploadBag(kura.port, kura.key, datasetId, path, bytes);
      let upload;
      for (;;) {
        upload = await call(`/v1/uploads/${accepted.id}`);
        if (['published', 'failed', 'needs_mapping'].includes(upload.status)) break;
        await sleep(100);
      }
      const ingestSeconds = seconds(started);
      sampling = false;
      await sampler;
      if (upload.status !== 'published') throw new Error(`upload ${upload.status}: ${JSON.stringify(upload.errors)}`);
      return {
        size: `${scale}×`,
        'bag MB': +(bytes / MB).toFixed(1),
        episodes: upload.episodeCount,
        steps: upload.stepCount,
        messages: reader.messages,
        'ingest s': +ingestSeconds.toFixed(2),
        'ingest MB/s': +(bytes / MB / ingestSeconds).toFixed(1),
        'reader alone MB/s': +(bytes / MB / reader.seconds).toFixed(1),
        'cp MB/s': Math.round(bytes / MB / cpSeconds),
        'ratio to reader': +(reader.seconds / ingestSeconds).toFixed(3),
        'ratio to cp': +(cpSeconds / ingestSeconds).toFixed(4),
        'api idle / peak RSS MB': `${Math.round(idle / MB)} / ${Math.round((await peakRss(pid)) / MB)}`,
        'ingest child peak RSS MB': Math.round(childPeak / MB),
      };
    } finally {
      await kura.stop();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export async function benchMcap() {
  const megabytes = Number(process.env.KURA_BENCH_MCAP_MB ?? 50);
  // About 5.3 MB of bag per 6 s episode at 160×120.
  const episodes = Math.max(1, Math.round(megabytes / 5.3));
  const scales = (process.env.KURA_BENCH_SCALES ?? '1,4').split(',').map(Number);
  const rows = [];
  for (const scale of scales) rows.push(await run(scale, episodes));
  console.table(rows);
  console.log(
    'ingest = POST of the bag (with its mapping) → published (upload, detection, mapping checks, alignment, shards, statistics, publish); reader alone = @mcap/core + decoding every message in one process',
  );
}
