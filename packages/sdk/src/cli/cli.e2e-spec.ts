import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RecordBatchFileReader, RecordBatchReader } from 'apache-arrow';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bearer, getBytes, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { createDataset, seedDataset, seedNdjson } from '../../../../test/support/datasets.js';
import { runKura } from '../../../../test/support/cli.js';

const fixture = (path: string) => fileURLToPath(new URL(`../../../../test/fixtures/${path}`, import.meta.url));

/** A TCP proxy that forwards until `limit` bytes went one way, then cuts every connection and refuses new ones. */
async function breakingProxy(targetPort: number, limit: { upstream?: number; downstream?: number } = {}) {
  let upstreamBytes = 0;
  let downstreamBytes = 0;
  let dead = false;
  const sockets = new Set<Socket>();
  const kill = () => {
    dead = true;
    for (const socket of sockets) socket.destroy();
  };
  const server = createServer((client) => {
    if (dead) return client.destroy();
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      upstreamBytes += chunk.length;
      if (limit.upstream !== undefined && upstreamBytes > limit.upstream) return kill();
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      downstreamBytes += chunk.length;
      if (limit.downstream !== undefined && downstreamBytes > limit.downstream) return kill();
      client.write(chunk);
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    upstreamBytes: () => upstreamBytes,
    close: async () => {
      kill();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('the kura CLI against a running instance', () => {
  let kura: TestApp;
  let url: string;
  let home: string;
  let operator: { id: string; key: string };
  let developer: { id: string; key: string };
  let user: { id: string; key: string };

  /** Runs `kura <args>` with its own config folder; KURA_URL and the key come from `env`. */
  const run = (args: string[], env: Record<string, string | undefined> = {}, input?: string) =>
    runKura(args, { XDG_CONFIG_HOME: home, KURA_URL: url, ...env }, { input });
  const as = (key: string) => ({ KURA_API_KEY: key });

  beforeAll(async () => {
    kura = await startTestApp();
    await kura.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(kura.app.getHttpServer().address() as AddressInfo).port}`;
    home = await mkdtemp(join(tmpdir(), 'kura-cli-'));
    operator = await kura.createKey('operator', 'cli operator');
    developer = await kura.createKey('developer');
    user = await kura.createKey('user');
  }, 60_000);
  afterAll(async () => {
    await kura.close();
    await rm(home, { recursive: true, force: true });
  });

  it('login checks the key and keeps it (0600) for later commands; a bad key is one line and exit 1', async () => {
    const login = await run(['login', '--url', url, '--json'], { KURA_URL: undefined }, `${operator.key}\n`);
    expect(login.code).toBe(0);
    expect(login.json()).toMatchObject({ url, key: { id: operator.id, role: 'operator', name: 'cli operator' } });
    const configFile = join(home, 'kura', 'config.json');
    expect((await stat(configFile)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(configFile, 'utf8'))).toEqual({ url, apiKey: operator.key });
    // Later commands use the stored login.
    const robots = await run(['robots', 'list', '--json'], { KURA_URL: undefined });
    expect(robots.code).toBe(0);

    const bad = await run(['login', '--url', url, '--key', 'kura_not-a-key']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^kura: INVALID_API_KEY: .*kura login/);
    await rm(configFile);
  });

  it('is on the repo root path as `npx kura` (the workspace bin)', async () => {
    const version = await new Promise<string>((resolve, reject) => {
      const child = spawn(fileURLToPath(new URL('../../../../node_modules/.bin/kura', import.meta.url)), ['--version']);
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.on('error', reject);
      child.on('close', () => resolve(stdout));
    });
    expect(version.trim()).toBe('0.1.0');
  });

  it('without a key, says so and how to fix it', async () => {
    const result = await run(['robots', 'create', '--name', 'a', '--type', 'so101', '--hz', '30', '--action-space', 'joint_position']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^kura: AUTH_REQUIRED: .*run `kura login` or set KURA_API_KEY\n$/);
  });

  it('an unreachable server is one line naming the cause, exit 3', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = await run(['datasets', 'list'], { KURA_URL: `http://127.0.0.1:${port}` });
    expect(result.code).toBe(3);
    expect(result.stderr).toBe(`kura: NETWORK_ERROR: cannot reach http://127.0.0.1:${port}: connection refused to 127.0.0.1:${port}\n`);
  }, 30_000);

  it('creates and lists robots and datasets, and shows one', async () => {
    const robot = await run(
      ['robots', 'create', '--name', 'so101 left', '--type', 'so101', '--hz', '30', '--action-space', 'joint_position', '--json'],
      as(operator.key),
    );
    expect(robot.stderr).toBe('');
    expect(robot.code).toBe(0);
    const robotId = robot.json().id as string;
    const dataset = await run(
      ['datasets', 'create', '--name', 'cli-pick', '--robot', robotId, '--access', 'public', '--license', 'CC-BY-4.0', '--json'],
      as(operator.key),
    );
    expect(dataset.stderr).toBe('');
    expect(dataset.code).toBe(0);
    expect(dataset.json()).toMatchObject({ name: 'cli-pick', robotId, access: 'public', license: 'CC-BY-4.0' });
    const listed = await run(['datasets', 'list'], as(operator.key));
    expect(listed.stdout).toMatch(/^id\s+name\s+access\s+episodeCount/);
    expect(listed.stdout).toContain('cli-pick');
    const shown = await run(['datasets', 'show', dataset.json().id as string], as(operator.key));
    expect(shown.stdout).toContain('cli-pick');
    expect(shown.stdout).toContain('license CC-BY-4.0');
    const missing = await run(['datasets', 'show', 'ds_000000000000aaaaaaaaaaaa'], as(operator.key));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^kura: DATASET_NOT_FOUND: /);
  });

  it('uploads a file and a folder (archived on the fly) and follows them to published', async () => {
    const datasetId = await createDataset(kura, operator.key);
    const scratch = await mkdtemp(join(tmpdir(), 'kura-cli-upload-'));
    try {
      const file = join(scratch, 'episodes.ndjson');
      await writeFile(file, seedNdjson({ episodes: 3, length: 4 }));
      const upload = await run(['upload', '--dataset', datasetId, '--wait', '--json', file], as(operator.key));
      expect(upload.code).toBe(0);
      expect(upload.json()).toMatchObject({ status: 'published', episodeCount: 3, stepCount: 12, fileName: 'episodes.ndjson' });
      // Not a terminal: no progress bar on stderr.
      expect(upload.stderr).not.toContain('█');
      const status = await run(['uploads', 'status', upload.json().id as string], as(operator.key));
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/^upload upl_\w+: published\n\s+version 1: 3 episodes, 12 steps, format kura-ndjson\n$/);
      const unknown = await run(['uploads', 'status', 'upl_000000000000aaaaaaaaaaaa', '--watch', '--json'], as(operator.key));
      expect(unknown.code).toBe(1);
      expect(unknown.json()).toMatchObject({ error: { code: 'UPLOAD_NOT_FOUND' } });

      const lerobot = await createDataset(kura, operator.key);
      const folder = await run(['upload', '--dataset', lerobot, '--wait', fixture('lerobot_v2.1/unitree_g1')], as(operator.key));
      expect(folder.code).toBe(0);
      expect(folder.stdout).toMatch(/: published\n\s+version 1: \d+ episodes, \d+ steps, format lerobot/);
      expect(folder.stderr).toMatch(/stored; processing/);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }, 60_000);

  it('a failed upload prints its errors with their locations and exits 1; a wrong path is exit 2', async () => {
    const datasetId = await createDataset(kura, operator.key);
    const scratch = await mkdtemp(join(tmpdir(), 'kura-cli-bad-'));
    try {
      const file = join(scratch, 'bad.ndjson');
      const lines = seedNdjson({ episodes: 1, length: 3 }).trim().split('\n');
      // Step 2 before step 1: ingest refuses it and says where.
      await writeFile(file, `${[lines[0], lines[2], lines[1]].join('\n')}\n`);
      const failed = await run(['upload', '--dataset', datasetId, '--format', 'kura-ndjson', '--wait', file], as(operator.key));
      expect(failed.code).toBe(1);
      expect(failed.stdout).toMatch(/: failed\n\s+error [A-Z_]+ at file bad\.ndjson, episode 0, step \d/);
      expect(failed.stderr).toMatch(/\nkura: UPLOAD_FAILED: upload upl_\w+ failed: [A-Z_]+ at file bad\.ndjson, episode 0/);

      const missing = await run(['upload', '--dataset', datasetId, join(scratch, 'nope.ndjson')], as(operator.key));
      expect(missing.code).toBe(2);
      expect(missing.stderr).toBe(`kura: PATH_NOT_FOUND: ${join(scratch, 'nope.ndjson')}: no such file or folder\n`);
      const usage = await run(['upload', file], as(operator.key));
      expect(usage.code).toBe(2);
      expect(usage.stderr).toContain("required option '--dataset <id>' not specified");
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("--options passes the format's options through (stored, shown); an option the format does not take is refused; --help lists the formats", async () => {
    const datasetId = await createDataset(kura, operator.key);
    const scratch = await mkdtemp(join(tmpdir(), 'kura-cli-options-'));
    try {
      const file = join(scratch, 'episodes.ndjson');
      await writeFile(file, seedNdjson({ episodes: 1, length: 3 }));
      const upload = await run(
        ['upload', '--dataset', datasetId, '--format', 'kura-ndjson', '--options', '{}', '--wait', '--json', file],
        as(operator.key),
      );
      expect(upload.code).toBe(0);
      expect(upload.json()).toMatchObject({ status: 'published', options: {} });

      const refused = await run(
        ['upload', '--dataset', datasetId, '--format', 'kura-ndjson', '--options', '{"topics":["/joint_states"]}', file],
        as(operator.key),
      );
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('VALIDATION_FAILED');
      expect(refused.stderr).toContain('options.topics');
      const notJson = await run(
        ['upload', '--dataset', datasetId, '--format', 'kura-ndjson', '--options', '{topics', file],
        as(operator.key),
      );
      expect(notJson.code).toBe(2);
      expect(notJson.stderr).toContain('kura: BAD_ARGUMENT: --options is not JSON');

      const help = await run(['upload', '--help']);
      expect(help.stdout).toMatch(/lerobot, rlds, hdf5-aloha, hdf5-robomimic,\s+kura-ndjson/);
      expect(help.stdout).toMatch(/kura-ndjson\s+Kura NDJSON, one step per line/);
      expect(help.stdout).toContain('--options <json>');
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  describe('resuming', () => {
    let scratch: string;
    let datasetId: string;
    beforeAll(async () => {
      scratch = await mkdtemp(join(tmpdir(), 'kura-cli-resume-'));
      datasetId = await createDataset(kura, operator.key, 'public');
    });
    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
    });

    it('a large upload goes in parts; after a dropped connection the same command sends only the missing parts', async () => {
      const file = join(scratch, 'big.ndjson');
      await writeFile(file, seedNdjson({ episodes: 100, length: 550, stateDims: 14 }));
      const size = (await stat(file)).size;
      expect(size).toBeGreaterThan(11 * 1024 * 1024);
      const args = ['upload', '--dataset', datasetId, '--part-size', '5MiB', '--multipart-threshold', '1MiB', '--wait', '--json', file];

      const proxy = await breakingProxy(Number(new URL(url).port), { upstream: 8 * 1024 * 1024 });
      const broken = await run(args, { ...as(operator.key), KURA_URL: proxy.url });
      await proxy.close();
      expect(broken.code).toBe(3);
      expect(broken.stderr).toMatch(/^kura: NETWORK_ERROR: cannot reach http:\/\/127\.0\.0\.1:\d+: connection/);
      // The first part is remembered.
      const [stateFile] = await readdir(join(home, 'kura', 'uploads'));
      const state = JSON.parse(await readFile(join(home, 'kura', 'uploads', stateFile!), 'utf8')) as { etags: Record<string, string> };
      expect(Object.keys(state.etags)).toEqual(['1']);

      const counting = await breakingProxy(Number(new URL(url).port));
      const resumed = await run(args, { ...as(operator.key), KURA_URL: counting.url });
      const sent = counting.upstreamBytes();
      await counting.close();
      expect(resumed.code).toBe(0);
      expect(resumed.json()).toMatchObject({ status: 'published', episodeCount: 100, stepCount: 55_000, bytes: size });
      // Only parts 2 and 3 crossed the wire the second time.
      expect(sent).toBeLessThan(size - 5 * 1024 * 1024 + 64 * 1024);
      expect(sent).toBeGreaterThan(size - 5 * 1024 * 1024);
      expect(await readdir(join(home, 'kura', 'uploads'))).toEqual([]);
    }, 120_000);

    it('a broken slice download continues where it stopped when the same command runs again', async () => {
      const out = join(scratch, 'slice.parquet');
      const args = ['slice', '--dataset', datasetId, '--episodes', '0-59', '--format', 'parquet', '--out', out, '--json'];
      const proxy = await breakingProxy(Number(new URL(url).port), { downstream: 400 * 1024 });
      const broken = await run(args, { ...as(developer.key), KURA_URL: proxy.url });
      await proxy.close();
      expect(broken.code).toBe(3);
      expect(broken.stderr).toMatch(
        /^kura: DOWNLOAD_INTERRUPTED: download interrupted after \d+ bytes: .*run the same command again to continue/,
      );
      const partial = (await stat(`${out}.part`)).size;
      expect(partial).toBeGreaterThan(0);

      const resumed = await run(args, as(developer.key));
      expect(resumed.code).toBe(0);
      const result = resumed.json() as { slice: { id: string }; bytes: number; resumedFrom: number };
      expect(result.resumedFrom).toBe(partial);
      const direct = await getBytes(kura, `/v1/slices/${result.slice.id}/data?format=parquet`, bearer(developer.key));
      expect((await readFile(out)).equals(direct.body)).toBe(true);
      expect(result.bytes).toBe(direct.body.length);
      await expect(stat(`${out}.part`)).rejects.toThrow();
    }, 60_000);
  });

  describe('slice output files', () => {
    let scratch: string;
    let datasetId: string;
    // A user's slice leaves out held-out episodes, and which of the three are held out depends on the
    // dataset's id (a hash): the rows to expect are 4 per episode that is not.
    let expectedRows: number;
    beforeAll(async () => {
      scratch = await mkdtemp(join(tmpdir(), 'kura-cli-out-'));
      ({ datasetId } = await seedDataset(kura, operator.key, { episodes: 3, length: 4, access: 'public' }));
      const episodes = await kura.request.get(`/v1/datasets/${datasetId}/episodes`).set(bearer(user.key));
      expectedRows = 4 * (episodes.body.items as Array<{ heldOut: boolean }>).filter((episode) => !episode.heldOut).length;
    });
    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
    });
    const slice = (out: string, extra: string[] = []) =>
      run(
        ['slice', '--dataset', datasetId, '--columns', 'observation.state,action', '--out', join(scratch, out), '--json', ...extra],
        as(user.key),
      );
    const ARROW_MAGIC = Buffer.from('ARROW1');

    it('.arrow and .feather get the Arrow IPC file format (magic ARROW1 at both ends), .arrows the stream format', async () => {
      for (const name of ['s.arrow', 'S.FEATHER']) {
        const result = await slice(name);
        expect([result.code, result.stderr]).toEqual([0, '']);
        expect(result.json()).toMatchObject({ format: 'arrow-file' });
        const bytes = await readFile(join(scratch, name));
        expect(bytes.subarray(0, 6).equals(ARROW_MAGIC)).toBe(true);
        expect(bytes.subarray(bytes.length - 6).equals(ARROW_MAGIC)).toBe(true);
        // What pyarrow.ipc.open_file does: the footer lists the record batches.
        const reader = RecordBatchReader.from(bytes);
        expect(reader).toBeInstanceOf(RecordBatchFileReader);
        let rows = 0;
        if (reader instanceof RecordBatchFileReader) {
          reader.open();
          expect(reader.numRecordBatches).toBeGreaterThan(0);
          for (let index = 0; index < reader.numRecordBatches; index++) rows += reader.readRecordBatch(index)?.numRows ?? 0;
        }
        expect(rows).toBe(expectedRows);
      }

      const stream = await slice('s.arrows');
      expect([stream.code, stream.stderr]).toEqual([0, '']);
      expect(stream.json()).toMatchObject({ format: 'arrow' });
      const bytes = await readFile(join(scratch, 's.arrows'));
      // A stream starts with a message (continuation marker 0xFFFFFFFF), has no magic and no footer.
      expect(bytes.readUInt32LE(0)).toBe(0xffffffff);
      expect(bytes.includes(ARROW_MAGIC)).toBe(false);
      const reader = RecordBatchReader.from(bytes);
      // (A file reader is a stream reader too in apache-arrow, so the check is that it is not a file.)
      expect([reader.isStream(), reader.isFile()]).toEqual([true, false]);
      let rows = 0;
      for (const batch of reader) rows += batch.numRows;
      expect(rows).toBe(expectedRows);
    });

    it('.parquet, .ndjson/.jsonl and .tar pick parquet, ndjson and lerobot', async () => {
      const expected: Array<[string, string, (bytes: Buffer) => boolean]> = [
        ['s.parquet', 'parquet', (bytes) => bytes.subarray(0, 4).toString() === 'PAR1'],
        ['s.ndjson', 'ndjson', (bytes) => typeof JSON.parse(bytes.toString().split('\n')[0]!) === 'object'],
        ['s.jsonl', 'ndjson', (bytes) => typeof JSON.parse(bytes.toString().split('\n')[0]!) === 'object'],
        ['s.tar', 'lerobot', (bytes) => bytes.subarray(257, 262).toString() === 'ustar'],
      ];
      for (const [name, format, looksRight] of expected) {
        const result = await slice(name);
        expect([name, result.code, result.stderr]).toEqual([name, 0, '']);
        expect(result.json()).toMatchObject({ format });
        expect([name, looksRight(await readFile(join(scratch, name)))]).toEqual([name, true]);
      }
    });

    it('an unknown extension writes parquet and says so in one stderr line; a contradicting --format is exit 2 naming both', async () => {
      const unknown = await slice('s.dat');
      expect(unknown.code).toBe(0);
      expect(unknown.json()).toMatchObject({ format: 'parquet' });
      expect(unknown.stderr).toBe(
        `kura: writing parquet to ${join(scratch, 's.dat')} (it has extension .dat, which names no format); choose another with --format or an extension (.arrow, .feather, .arrows, .parquet, .ndjson, .jsonl, .tar)\n`,
      );
      expect((await readFile(join(scratch, 's.dat'))).subarray(0, 4).toString()).toBe('PAR1');
      // An explicit --format needs no extension.
      const chosen = await slice('s.bin', ['--format', 'arrow-file']);
      expect([chosen.code, chosen.stderr]).toEqual([0, '']);
      expect((await readFile(join(scratch, 's.bin'))).subarray(0, 6).equals(ARROW_MAGIC)).toBe(true);

      const contradicting = await slice('t.arrow', ['--format', 'parquet']);
      expect(contradicting.code).toBe(2);
      expect(contradicting.stderr).toMatch(
        /^kura: BAD_ARGUMENT: --format parquet contradicts --out .*t\.arrow, whose extension \.arrow means arrow-file; drop --format or change the extension\n$/,
      );
      const stream = await slice('t.arrow', ['--format', 'arrow']);
      expect(stream.code).toBe(2);
      expect(stream.stderr).toContain('--format arrow contradicts');
      await expect(stat(join(scratch, 't.arrow'))).rejects.toThrow();
      expect((await readdir(scratch)).filter((file) => file.startsWith('t.'))).toEqual([]);
    });

    it('--help says which extension gives which format, Arrow file or stream', async () => {
      const help = await run(['slice', '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/\.arrow, \.feather\s+arrow-file\s+Arrow IPC file format/);
      expect(help.stdout).toMatch(/\.arrows\s+arrow\s+Arrow IPC stream format/);
      expect(help.stdout).toMatch(/\.tar\s+lerobot/);
    });
  });

  it('pushes a policy folder, evaluates it, and acts with it; a rejected policy lists its errors', async () => {
    const { datasetId } = await seedDataset(kura, operator.key, { episodes: 100, length: 3, access: 'public' });
    const folder = join(home, 'policy');
    await mkdir(folder, { recursive: true });
    await writeFile(
      join(folder, 'policy.json'),
      JSON.stringify({ name: 'cli-policy', runtime: 'js', entry: 'policy.js', observation: ['observation.state'], action: { shape: [2] } }),
    );
    await writeFile(join(folder, 'policy.js'), 'function act(o) { return [o["observation.state"][0], 0]; }');
    const pushed = await run(['policies', 'push', folder, '--access', 'public', '--json'], as(developer.key));
    expect(pushed.code).toBe(0);
    expect(pushed.json()).toMatchObject({ status: 'ready', name: 'cli-policy', version: 1 });
    const policyId = pushed.json().id as string;

    const evaluation = await run(['eval', policyId, '--dataset', datasetId, '--wait'], as(developer.key));
    expect(evaluation.code).toBe(0);
    expect(evaluation.stdout).toMatch(/: completed\n\s+actionMse [\d.e-]+, actionMae [\d.e-]+ over \d+ episodes \/ \d+ steps/);

    const act = await run(['act', policyId, '--obs', '{"observation.state": [0.5, 1, 2]}', '--json'], as(user.key));
    expect(act.code).toBe(0);
    expect(act.json()).toMatchObject({ action: [0.5, 0], policyId });
    const badObservation = await run(['act', policyId, '--obs', '{"observation.other": [1]}'], as(user.key));
    expect(badObservation.code).toBe(1);
    expect(badObservation.stderr).toMatch(/^kura: OBSERVATION_INVALID: .*\(at field observation\.observation\.other\)\n$/);
    expect((await run(['act', policyId, '--obs', '{not json'], as(user.key))).stderr).toMatch(/^kura: BAD_ARGUMENT: --obs is not JSON/);

    // An uploaded policy has no lineage: its owner may export it to a device; nobody else may.
    const expires = new Date(Date.now() + 86_400_000).toISOString();
    const exported = await run(
      ['policies', 'export', policyId, '--device', 'arm-1', '--expires', expires, '--out', join(home, 'arm-1.tar'), '--json'],
      as(developer.key),
    );
    expect(exported.code).toBe(0);
    expect(exported.json()).toMatchObject({ exportId: expect.stringMatching(/^edx_/), file: join(home, 'arm-1.tar') });
    expect((await readFile(join(home, 'arm-1.tar'))).subarray(257, 262).toString()).toBe('ustar');
    const stranger = await run(
      ['policies', 'export', policyId, '--device', 'x', '--expires', expires, '--out', join(home, 'x.tar')],
      as(user.key),
    );
    expect([stranger.code, stranger.stderr]).toEqual([1, expect.stringMatching(/^kura: FORBIDDEN: /)]);

    await writeFile(join(folder, 'policy.js'), 'var nothing = 1;');
    const rejected = await run(['policies', 'push', folder], as(developer.key));
    expect(rejected.code).toBe(1);
    expect(rejected.stdout).toMatch(/: rejected\n\s+error [A-Z_]+/);
    expect(rejected.stderr).toMatch(/^kura: POLICY_REJECTED: /);
  }, 90_000);
});
