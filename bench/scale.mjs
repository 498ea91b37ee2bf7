// `npm run bench -- scale`: does a request cost what is asked, or what is stored? Numeric datasets
// (no images, so they fit here) of the same steps cut into few long or many short episodes, uploaded
// to an embedded api and timed to published; then the same reads on the small and the large one.
// KURA_BENCH_SCALE_EPISODES sets the many-episodes counts (default "20000,100000").
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startScratchApi } from './support.mjs';
import { benchScaleDataset, get, p50, publish } from './scale-dataset.mjs';
import { episodeFloorSeconds } from './episode-floor.mjs';

const STEPS_PER_SHORT_EPISODE = 5;
const LONG_EPISODES = 200;

/** Kura NDJSON of `episodes` × `steps` with a 6-number state and action, tasks cycling over 10. */
async function writeNumeric(path, episodes, steps) {
  const out = createWriteStream(path);
  for (let episode = 0; episode < episodes; episode++) {
    const task = `task ${episode % 10}`;
    for (let step = 0; step < steps; step++) {
      const value = (episode * 31 + step) % 1000;
      const line = `{"episode":${episode},"step":${step},"timestamp":${step / 10},"observation":{"state":[${value},1,2,3,4,5]},"action":[${value / 2},0,0,0,0,1],"language":"${task}"}\n`;
      if (!out.write(line)) await new Promise((resolve) => out.once('drain', resolve));
    }
  }
  await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
}

/** Uploads the file into a new dataset and waits until it is published: the seconds it took. */
async function publishFile(server, robotId, name, file) {
  const dataset = await server.call('/v1/datasets', { name, robotId, access: 'private' });
  return { datasetId: dataset.id, seconds: await publish(server, dataset.id, file), megabytes: (await stat(file)).size / 1e6 };
}

/** Uploads of each file per size (KURA_BENCH_SCALE_RUNS, default 3). */
const RUNS = Number(process.env.KURA_BENCH_SCALE_RUNS ?? 3);

/** The run of median time (its dataset is the one the reads use). */
function medianRun(runs) {
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  return Object.assign(sorted[Math.floor((sorted.length - 1) / 2)], { all: runs.map((run) => run.seconds) });
}

/** p50 of `runs` sequential calls of `path`, in milliseconds. */
const timeRequest = (server, path, runs = 20) => p50(runs, () => get(server, path));

export async function benchScale() {
  const counts = (process.env.KURA_BENCH_SCALE_EPISODES ?? '20000,100000').split(',').map(Number);
  const scratch = await mkdtemp(join(tmpdir(), 'kura-bench-scale-'));
  const server = await startScratchApi('scale');
  const uploads = [];
  const reads = [];
  try {
    const robot = await server.call('/v1/robots', {
      name: 'scale',
      robotType: 'bench',
      controlFrequencyHz: 10,
      actionSpace: 'joint_position',
    });
    for (const many of counts) {
      const steps = many * STEPS_PER_SHORT_EPISODE;
      const longFile = join(scratch, `long-${many}.ndjson`);
      const shortFile = join(scratch, `short-${many}.ndjson`);
      await writeNumeric(longFile, LONG_EPISODES, steps / LONG_EPISODES);
      await writeNumeric(shortFile, many, STEPS_PER_SHORT_EPISODE);
      // RUNS uploads of each file, taking turns, and the median of each: the 200-episode baseline
      // alone varied 3.4-4.8 s between runs on this machine, and one pass compared whichever
      // seconds each upload fell on.
      const longRuns = [];
      const shortRuns = [];
      for (let run = 0; run < RUNS; run++) {
        longRuns.push(await publishFile(server, robot.id, `long-${many}-${run}`, longFile));
        shortRuns.push(await publishFile(server, robot.id, `short-${many}-${run}`, shortFile));
      }
      const long = medianRun(longRuns);
      const short = medianRun(shortRuns);
      // A peer program writing one record batch per episode, on the same files (best of 2). It was
      // the floor once; Kura now beats it on short episodes, so it is reported as a peer.
      const floor = async (file) =>
        Math.min(await episodeFloorSeconds(file, `${file}.arrow`), await episodeFloorSeconds(file, `${file}.arrow`));
      const longFloor = await floor(longFile);
      const shortFloor = await floor(shortFile);
      await rm(`${longFile}.arrow`);
      await rm(`${shortFile}.arrow`);
      await rm(longFile);
      await rm(shortFile);
      uploads.push({
        steps,
        MB: +short.megabytes.toFixed(1),
        [`${LONG_EPISODES} episodes s`]: +long.seconds.toFixed(2),
        episodes: many,
        's (upload → published)': +short.seconds.toFixed(2),
        'runs s (long | short)': `${long.all.map((seconds) => seconds.toFixed(2)).join(' ')} | ${short.all.map((seconds) => seconds.toFixed(2)).join(' ')}`,
        ratio: +(short.seconds / long.seconds).toFixed(2),
        'target ≤': 2,
        'peer s (long/short)': `${longFloor.toFixed(2)}/${shortFloor.toFixed(2)}`,
        'peer ratio': +(shortFloor / longFloor).toFixed(2),
      });
      // The same reads on the dataset of few episodes and on the one of many.
      const readsOf = async (datasetId, episodes) => ({
        'episodes, first page': await timeRequest(server, `/v1/datasets/${datasetId}/episodes?limit=50`),
        'episodes, a deep range': await timeRequest(
          server,
          `/v1/datasets/${datasetId}/episodes?limit=50&episodes=${Math.floor(episodes * 0.9)}-${episodes - 1}`,
        ),
        'episodes, by task': await timeRequest(server, `/v1/datasets/${datasetId}/episodes?limit=50&task=task%207`),
        'episodes, by length': await timeRequest(server, `/v1/datasets/${datasetId}/episodes?limit=50&minLength=1&maxLength=10000`),
        dataset: await timeRequest(server, `/v1/datasets/${datasetId}`),
        stats: await timeRequest(server, `/v1/datasets/${datasetId}/stats`),
      });
      const small = await readsOf(long.datasetId, LONG_EPISODES);
      const large = await readsOf(short.datasetId, many);
      for (const operation of Object.keys(small))
        reads.push({
          operation,
          [`${LONG_EPISODES} episodes ms`]: +small[operation].toFixed(1),
          episodes: many,
          'ms (p50 of 20)': +large[operation].toFixed(1),
          ratio: +(large[operation] / small[operation]).toFixed(2),
          'target ≤': 1.5,
        });
    }
  } finally {
    await server.stop();
    await rm(scratch, { recursive: true, force: true });
  }
  console.table(uploads);
  console.log(
    `publish: the same steps as ${LONG_EPISODES} long episodes and as many ${STEPS_PER_SHORT_EPISODE}-step ones, timed upload → published; the median of ${RUNS} uploads of each, taking turns`,
  );
  console.log(
    'peer: a minimal program that only parses the NDJSON and writes one Arrow record batch per episode (apache-arrow, in process, no upload)',
  );
  console.table(reads);
  console.log(`reads: p50 of 20 sequential requests on the dataset of ${LONG_EPISODES} episodes and on the one of many (same steps)`);
  // KURA_BENCH_SCALE_PART=1 stops after part one (part two alone: `npm run bench -- scale-dataset`).
  return { uploads, reads, dataset: process.env.KURA_BENCH_SCALE_PART === '1' ? undefined : await benchScaleDataset() };
}
