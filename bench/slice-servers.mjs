// The baselines of the slices bench's test (c), each run in a process of its own (as the api is):
// `node bench/slice-servers.mjs <static|floor>` reads its settings as JSON on stdin and prints
// `{"port":…}` once it listens.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** A plain static server of byte ranges of files: GET /<n> sends range n. */
async function staticRangeServer({ ranges }) {
  const server = createServer((req, res) => {
    const range = ranges[Number(req.url.slice(1))];
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': range.end - range.start + 1 });
    createReadStream(range.file, { start: range.start, end: range.end }).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, close: () => new Promise((resolve) => server.close(resolve)) };
}

/**
 * The floor of a 1-episode slice download: a minimal server doing only what cannot be skipped. It
 * finds the key (one query), checks that the dataset is its owner's (one query), looks up the
 * episode's byte range (one query), reads the range, checks its sha256 and sends it. It uses the
 * api's own embedded Postgres and shard files. It sends the episode's bytes alone, where Kura adds
 * the stream's schema and dictionary (a few KB). GET /<episode index>.
 */
async function sliceFloorServer({ dataDir, datasetId, key }) {
  const password = (await readFile(join(dataDir, 'pg-password'), 'utf8')).trim();
  const port = Number((await readFile(join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[3]);
  const pool = new pg.Pool({ connectionString: `postgresql://kura:${encodeURIComponent(password)}@127.0.0.1:${port}/kura`, max: 10 });
  const keyHash = createHash('sha256').update(key, 'utf8').digest('hex');
  const answer = async (req, res) => {
    const found = await pool.query('SELECT id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL', [keyHash]);
    const dataset = await pool.query('SELECT owner_key_id FROM datasets WHERE id = $1', [datasetId]);
    if (found.rows[0]?.id !== dataset.rows[0]?.owner_key_id) throw new Error('floor: the key does not own the dataset');
    const episode = await pool.query(
      'SELECT shard_key, byte_offset, byte_length, checksum FROM episodes WHERE dataset_id = $1 AND episode_index = $2',
      [datasetId, Number(req.url.slice(1))],
    );
    const { shard_key: shardKey, byte_offset: offset, byte_length: length, checksum } = episode.rows[0];
    const start = Number(offset);
    const hash = createHash('sha256');
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': Number(length) });
    const stream = createReadStream(join(dataDir, 'blobs', shardKey), { start, end: start + Number(length) - 1 });
    stream.on('data', (chunk) => hash.update(chunk));
    stream.on('end', () => {
      if (hash.digest('hex') !== checksum) res.destroy(new Error('floor: checksum mismatch'));
    });
    stream.pipe(res);
  };
  const server = createServer((req, res) =>
    answer(req, res).catch((error) => {
      res.destroy(error);
    }),
  );
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    close: async () => {
      await new Promise((resolve) => server.close(resolve));
      await pool.end();
    },
  };
}

const servers = { static: staticRangeServer, floor: sliceFloorServer };

/** Starts a baseline server in a child process; `close()` stops it. */
export async function startServerProcess(kind, settings) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), kind], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(JSON.stringify(settings));
  const port = await new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
      if (text.includes('\n')) resolve(JSON.parse(text.split('\n')[0]).port);
    });
    child.once('exit', (code) => reject(new Error(`the ${kind} server exited (${code}) before listening`)));
  });
  return {
    port,
    close: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const server = await servers[process.argv[2]](JSON.parse(input));
  process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
  process.once('SIGTERM', () => server.close().then(() => process.exit(0)));
}
