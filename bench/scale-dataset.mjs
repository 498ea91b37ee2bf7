// `npm run bench -- scale` (part two): does a request cost what is asked, or what is stored? A large
// numeric dataset (100,000 episodes × 100 steps, sent as 100 uploads) and a second one with 500
// versions, each against a 1,000-episode dataset of the same shape in the same run: episode listing
// with each filter (first page and a deep page), slice creation over 0.1 %, 1 % and 100 % of the
// episodes, a 10-random-episode slice's download, stats, publishing the next version, the viewer's
// dataset page, and GET /v1/datasets with 1,000 datasets. Sizes: KURA_BENCH_SCALE_UPLOADS (100),
// KURA_BENCH_SCALE_VERSIONS (500), KURA_BENCH_SCALE_DATASETS (1000).
import { createWriteStream, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { upload } from './ingest.mjs';
import { apiClient, freePort, percentile, startApi, waitForHealthy } from './support.mjs';

const EPISODES_PER_UPLOAD = 1000;
const STEPS = 100;
const SMALL_UPLOADS = 10;
const SMALL_EPISODES_PER_UPLOAD = 100;
const seconds = (started) => Number(process.hrtime.bigint() - started) / 1e9;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Kura NDJSON: `episodes` × `steps`, a 6-number state and a 2-number action, tasks over 10, every 4th episode a success. */
async function writeNumeric(path, episodes, steps, seed) {
  const out = createWriteStream(path);
  for (let episode = 0; episode < episodes; episode++) {
    const task = `task ${(seed + episode) % 10}`;
    const success = (seed + episode) % 4 === 0;
    for (let step = 0; step < steps; step++) {
      const value = (seed * 7 + episode * 31 + step) % 1000;
      const last = step === steps - 1;
      const line = `{"episode":${episode},"step":${step},"observation":{"state":[${value},1,2,3,4,5]},"action":[${value / 2},1],"language":"${task}"${last ? `,"reward":${success ? 1 : 0},"isTerminal":true,"success":${success}` : ''}}\n`;
      if (!out.write(line)) await new Promise((resolve) => out.once('drain', resolve));
    }
  }
  await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
}

/** Uploads the file and waits until it is published; the seconds it took. */
export async function publish(server, datasetId, file) {
  const started = process.hrtime.bigint();
  const accepted = await upload(server.port, server.key, datasetId, file, (await stat(file)).size);
  for (;;) {
    const result = await server.call(`/v1/uploads/${accepted.id}`);
    if (result.status === 'published') return seconds(started);
    if (result.status === 'failed') throw new Error(JSON.stringify(result.errors));
    await sleep(20);
  }
}

/** p50 over `runs` of the milliseconds `request()` takes. */
export async function p50(runs, request) {
  const times = [];
  for (let run = 0; run < runs; run++) {
    const started = process.hrtime.bigint();
    await request(run);
    times.push(seconds(started) * 1000);
  }
  return percentile(times, 0.5);
}

export async function get(server, path) {
  const response = await fetch(`${server.base}${path}`, { headers: { Authorization: `Bearer ${server.key}` } });
  const body = await response.arrayBuffer();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${Buffer.from(body).toString('utf8').slice(0, 300)}`);
  return body;
}

/** The embedded Postgres of a scratch api, for counting rows. */
async function database(dataDir) {
  const port = Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[3]);
  const password = readFileSync(join(dataDir, 'pg-password'), 'utf8').trim();
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'kura', password, database: 'kura' });
  await client.connect();
  return client;
}

/** The reads timed on every dataset: name → path (or a function of the dataset's episode count). */
function readsOf(datasetId, episodes) {
  const deep = `episodes=${Math.floor(episodes * 0.9)}-${episodes - 1}`;
  const list = (query) => `/v1/datasets/${datasetId}/episodes?limit=50${query ? `&${query}` : ''}`;
  return {
    'episodes, first page': list(''),
    'episodes, deep page (90 %)': list(deep),
    'by task, first page': list('task=task%207'),
    'by task, deep page': list(`task=task%207&${deep}`),
    'by success, first page': list('success=true'),
    'by success, deep page': list(`success=true&${deep}`),
    'by length, first page': list('minLength=50&maxLength=1000'),
    'by length, deep page': list(`minLength=50&maxLength=1000&${deep}`),
    'by version, first page': list('version=1'),
    stats: `/v1/datasets/${datasetId}/stats`,
    dataset: `/v1/datasets/${datasetId}`,
    // Pages of 10: as many rows on either side (the small datasets hold 10 uploads and 10 versions).
    'versions, first page of 10': `/v1/datasets/${datasetId}/versions?limit=10`,
    'uploads, first page of 10': `/v1/datasets/${datasetId}/uploads?limit=10`,
    // The pages the viewer asks for: their replies grow with the rows there are, up to the limit.
    'versions, first page of 50': `/v1/datasets/${datasetId}/versions?limit=50`,
    'uploads, first page of 100': `/v1/datasets/${datasetId}/uploads?limit=100`,
  };
}

/** Reads whose reply holds more rows on the larger dataset (up to their limit): their cost follows the reply. */
const REPLY_SIZED = new Set(['versions, first page of 50', 'uploads, first page of 100']);

/** What the viewer's dataset page asks for when it opens (apps/web/src/pages/dataset.tsx), all at once. */
function viewerPage(server, datasetId, robotId) {
  return Promise.all(
    [
      `/v1/datasets/${datasetId}`,
      `/v1/robots/${robotId}`,
      `/v1/datasets/${datasetId}/stats`,
      `/v1/datasets/${datasetId}/episodes?limit=50`,
      `/v1/datasets/${datasetId}/terms`,
      `/v1/datasets/${datasetId}/earnings`,
      `/v1/datasets/${datasetId}/uploads?limit=100`,
    ].map((path) => get(server, path)),
  );
}

/** Slice creation and download on one dataset of `episodes` episodes, `perShard` to a shard (one upload each). */
async function sliceTimes(server, datasetId, episodes, perShard) {
  const create = (body) => server.call('/v1/slices', { sources: [{ datasetId }], ...body });
  const times = {};
  for (const [label, fraction, runs] of [
    ['slice of 0.1 %', 0.001, 5],
    ['slice of 1 %', 0.01, 5],
    ['slice of 100 %', 1, 3],
  ])
    times[`${label}, created`] = await p50(runs, (run) =>
      // A different slice each run (a slice's id is its definition's): another seed, or another stride.
      create(
        fraction === 1
          ? { steps: { stride: run + 1 } }
          : { sample: { episodes: Math.max(1, Math.round(episodes * fraction)), seed: run + 1 } },
      ),
    );
  // Ten random episodes, a different ten each run: created, then downloaded whole.
  let random = 12345;
  const next = () => (random = (random * 1103515245 + 12345) % 2 ** 31);
  const slices = [];
  for (let run = 0; run < 5; run++) slices.push(await create({ episodes: Array.from({ length: 10 }, () => next() % episodes).join(',') }));
  times['10 random episodes, downloaded'] = await p50(5, (run) => get(server, `/v1/slices/${slices[run].id}/data`));
  // The same from 10 different shards on either side: random episodes of the small dataset's 10
  // shards fall in fewer files than those of the large one's 100, which the line above compares too.
  const shards = episodes / perShard;
  const spread = [];
  for (let run = 0; run < 5; run++) {
    const chosen = new Set();
    while (chosen.size < 10) chosen.add(next() % shards);
    spread.push(await create({ episodes: [...chosen].map((shard) => shard * perShard + (next() % perShard)).join(',') }));
  }
  times['10 random episodes of 10 shards, downloaded'] = await p50(5, (run) => get(server, `/v1/slices/${spread[run].id}/data`));
  // The same downloads again: their shards' bytes are now in the page cache on either side. This
  // machine evicts file pages it has not read for a while, even with memory free (5 % of a 10 MB
  // file within a minute), so the first pass reads more of the large dataset's 100 shards from disk.
  times['10 random episodes of 10 shards, downloaded again'] = await p50(5, (run) => get(server, `/v1/slices/${spread[run].id}/data`));
  return times;
}

export async function benchScaleDataset() {
  const uploads = Number(process.env.KURA_BENCH_SCALE_UPLOADS ?? 100);
  const versions = Number(process.env.KURA_BENCH_SCALE_VERSIONS ?? 500);
  const datasetCount = Number(process.env.KURA_BENCH_SCALE_DATASETS ?? 1000);
  const scratch = await mkdtemp(join(tmpdir(), 'kura-bench-scale2-'));
  await chmod(scratch, 0o755);
  const dataDir = join(scratch, 'data');
  const key = `kura_${'b'.repeat(43)}`;
  const port = await freePort();
  const api = startApi({ KURA_DATA_DIR: dataDir, HOST: '127.0.0.1', KURA_ADMIN_KEY: key, LOG_LEVEL: 'warn', PORT: String(port) });
  const base = `http://127.0.0.1:${port}`;
  const server = { port, key, base, call: apiClient(base, key) };
  const rows = [];
  const notes = [];
  const benchStarted = process.hrtime.bigint();
  try {
    await waitForHealthy(base);
    const robot = await server.call('/v1/robots', {
      name: 'scale',
      robotType: 'bench',
      controlFrequencyHz: 10,
      actionSpace: 'joint_position',
    });
    const dataset = async (name) => (await server.call('/v1/datasets', { name, robotId: robot.id, access: 'private' })).id;
    const file = join(scratch, 'upload.ndjson');

    // The small dataset: 1,000 episodes × 100 steps in 10 uploads.
    const small = await dataset('small');
    for (let index = 0; index < SMALL_UPLOADS; index++) {
      await writeNumeric(file, SMALL_EPISODES_PER_UPLOAD, STEPS, index);
      await publish(server, small, file);
    }
    const smallEpisodes = SMALL_UPLOADS * SMALL_EPISODES_PER_UPLOAD;
    // A page of 3 (as many as there are here) and the viewer's page of 50, whose reply grows to 50 rows.
    const listWithFew = await p50(20, () => get(server, '/v1/datasets?limit=3'));
    const fullListWithFew = await p50(20, () => get(server, '/v1/datasets?limit=50'));

    // The large one: `uploads` × 1,000 episodes × 100 steps.
    const large = await dataset('large');
    const ingestStarted = process.hrtime.bigint();
    const uploadSeconds = [];
    for (let index = 0; index < uploads; index++) {
      await writeNumeric(file, EPISODES_PER_UPLOAD, STEPS, index);
      uploadSeconds.push(await publish(server, large, file));
    }
    const largeEpisodes = uploads * EPISODES_PER_UPLOAD;
    notes.push(
      `large dataset: ${largeEpisodes.toLocaleString('en')} episodes × ${STEPS} steps in ${uploads} uploads of ${(await stat(file)).size / 1e6} MB, ` +
        `published in ${seconds(ingestStarted).toFixed(0)} s (upload → published: first ${uploadSeconds[0].toFixed(2)} s, ` +
        `p50 ${percentile(uploadSeconds, 0.5).toFixed(2)} s, last ${uploadSeconds.at(-1).toFixed(2)} s)`,
    );

    // The same reads on both.
    const compare = (operation, smallMs, largeMs, target = 1.5) =>
      rows.push({
        operation,
        [`${smallEpisodes} episodes ms`]: +smallMs.toFixed(1),
        [`${largeEpisodes} episodes ms`]: +largeMs.toFixed(1),
        ratio: +(largeMs / smallMs).toFixed(2),
        'target ≤': target,
      });
    const smallReads = readsOf(small, smallEpisodes);
    const largeReads = readsOf(large, largeEpisodes);
    for (const operation of Object.keys(smallReads))
      compare(
        operation,
        await p50(20, () => get(server, smallReads[operation])),
        await p50(20, () => get(server, largeReads[operation])),
        REPLY_SIZED.has(operation) ? '∝ reply rows' : 1.5,
      );
    compare(
      "viewer's dataset page (7 requests at once)",
      await p50(10, () => viewerPage(server, small, robot.id)),
      await p50(10, () => viewerPage(server, large, robot.id)),
    );
    const smallSlices = await sliceTimes(server, small, smallEpisodes, SMALL_EPISODES_PER_UPLOAD);
    const largeSlices = await sliceTimes(server, large, largeEpisodes, EPISODES_PER_UPLOAD);
    for (const operation of Object.keys(smallSlices))
      compare(
        operation,
        smallSlices[operation],
        largeSlices[operation],
        operation.includes('%') && !operation.includes('0.1') ? '∝ selection' : 1.5,
      );
    // Publishing the next version: 10 episodes into each, 3 times.
    await writeNumeric(file, 10, STEPS, 999);
    compare(
      'publishing the next version (10 episodes)',
      await p50(3, () => publish(server, small, file)),
      await p50(3, () => publish(server, large, file)),
    );

    // Postgres rows per episode.
    const client = await database(dataDir);
    try {
      const count = async (sql) => Number((await client.query(sql)).rows[0].count);
      const episodeRows = await count('SELECT count(*) FROM episodes');
      const totalEpisodes = smallEpisodes + largeEpisodes + 6 * 10;
      notes.push(
        `Postgres rows: ${episodeRows.toLocaleString('en')} in episodes for ${totalEpisodes.toLocaleString('en')} episodes (1 per episode); none per step; one uploads row and one dataset_versions row per upload`,
      );
    } finally {
      await client.end();
    }

    // A dataset of `versions` versions: publish time at its first versions and its last.
    const versioned = await dataset('versions');
    await writeNumeric(file, 1, 20, 0);
    const publishTimes = [];
    for (let version = 1; version <= versions; version++) publishTimes.push(await publish(server, versioned, file));
    const firstTen = publishTimes.slice(0, 10);
    const lastTen = publishTimes.slice(-10);
    rows.push({
      operation: `publishing a version (1 episode): versions 1–10 vs ${versions - 9}–${versions}`,
      [`${smallEpisodes} episodes ms`]: +(percentile(firstTen, 0.5) * 1000).toFixed(0),
      [`${largeEpisodes} episodes ms`]: +(percentile(lastTen, 0.5) * 1000).toFixed(0),
      ratio: +(percentile(lastTen, 0.5) / percentile(firstTen, 0.5)).toFixed(2),
      'target ≤': 'flat',
    });
    const versionedReads = readsOf(versioned, versions);
    for (const operation of ['episodes, first page', 'stats', 'dataset', 'versions, first page of 10', 'versions, first page of 50'])
      compare(
        `${operation} (${versions} versions vs 10)`,
        await p50(20, () => get(server, smallReads[operation])),
        await p50(20, () => get(server, versionedReads[operation])),
        REPLY_SIZED.has(operation) ? '∝ reply rows' : 1.5,
      );

    // GET /v1/datasets with `datasetCount` datasets, against the few above.
    for (let index = 0; index < datasetCount; index++) await dataset(`many-${index}`);
    compare(
      `GET /v1/datasets, page of 3 (${datasetCount + 3} datasets vs 3)`,
      listWithFew,
      await p50(20, () => get(server, '/v1/datasets?limit=3')),
    );
    compare(
      `GET /v1/datasets, page of 50 (${datasetCount + 3} datasets vs 3)`,
      fullListWithFew,
      await p50(20, () => get(server, '/v1/datasets?limit=50')),
      '∝ reply rows',
    );
    await rm(file, { force: true });
  } finally {
    await api.stop();
    await rm(scratch, { recursive: true, force: true });
  }
  console.table(rows);
  for (const note of notes) console.log(note);
  console.log(
    `reads: p50 of 20 sequential requests (slices: of 5, the 100 % one of 3); part two took ${seconds(benchStarted).toFixed(0)} s`,
  );
  return { rows, notes };
}
