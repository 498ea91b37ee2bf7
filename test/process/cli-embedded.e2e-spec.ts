// The CLI flow a robot team runs, against `npm start`'s process: the built api in embedded mode
// (its own Postgres, blob folder and jobs), driven only through the `kura` command.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort } from '@kura/core';
import { runKura } from '../support/cli.js';
import { seedNdjson } from '../support/datasets.js';
import { startKuraProcess, waitForHealthy, type KuraProcess } from '../support/processes.js';

const fixture = (path: string) => fileURLToPath(new URL(`../../test/fixtures/${path}`, import.meta.url));

describe('kura CLI against an embedded-mode api (npm start)', () => {
  let scratch: string;
  let kura: KuraProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kura-cli-embedded-'));
    await chmod(scratch, 0o755);
    const port = await freePort();
    kura = startKuraProcess('api', { KURA_DATA_DIR: join(scratch, 'data'), PORT: String(port), HOST: '127.0.0.1' });
    await waitForHealthy(`http://127.0.0.1:${port}`, kura);
    env = { XDG_CONFIG_HOME: join(scratch, 'config'), KURA_URL: `http://127.0.0.1:${port}` };
  }, 60_000);
  afterAll(async () => {
    kura.child.kill('SIGINT');
    await kura.exited;
    await rm(scratch, { recursive: true, force: true });
  });

  it('logs in with the first-start admin key, uploads a LeRobot folder, slices it and shows a progress bar on a terminal', async () => {
    const adminKey = (await readFile(join(scratch, 'data', 'admin.key'), 'utf8')).trim();
    const login = await runKura(['login'], env, { input: `${adminKey}\n` });
    expect(login.stderr).toBe('');
    expect(login.stdout).toMatch(/^logged in to http:\/\/127\.0\.0\.1:\d+ as "admin \(first start\)" \(admin\)/);

    const robot = await runKura(
      ['robots', 'create', '--name', 'g1', '--type', 'unitree_g1', '--hz', '30', '--action-space', 'joint_position', '--json'],
      env,
    );
    const dataset = await runKura(
      ['datasets', 'create', '--name', 'g1-bottles', '--robot', robot.json().id as string, '--access', 'public', '--json'],
      env,
    );
    const datasetId = dataset.json().id as string;
    const upload = await runKura(['upload', '--dataset', datasetId, '--wait', '--json', fixture('lerobot_v2.1/unitree_g1')], env);
    expect(upload.stderr).toBe('');
    expect(upload.json()).toMatchObject({ status: 'published', format: 'lerobot', fileName: 'unitree_g1.tar' });

    const out = join(scratch, 'g1.parquet');
    const slice = await runKura(['slice', '--dataset', datasetId, '--columns', 'observation.state,action', '--out', out], env);
    expect(slice.code).toBe(0);
    expect(slice.stdout).toMatch(/g1\.parquet: [\d.]+ (KB|MB) \(parquet\)\n$/);
    expect((await readFile(out)).subarray(0, 4).toString()).toBe('PAR1');

    // On a terminal: bars with bytes, rate and percentages, on the same command.
    const file = join(scratch, 'more.ndjson');
    await writeFile(file, seedNdjson({ episodes: 20, length: 50 }));
    const other = await runKura(['datasets', 'create', '--name', 'more', '--robot', robot.json().id as string, '--json'], env);
    const withBar = await runKura(['upload', '--dataset', other.json().id as string, '--wait', file], env, { tty: true });
    expect(withBar.code).toBe(0);
    expect(withBar.stdout).toMatch(/sending \[█+\] 100% [\d.]+ KB\/[\d.]+ KB [\d.]+ (B|KB|MB)\/s/);
    expect(withBar.stdout).toMatch(/processing \[[█░]+\] 100%/);
    expect(withBar.stdout).toMatch(/published\r?\n\s+version 1: 20 episodes, 1000 steps/);
    expect((await stat(join(scratch, 'config', 'kura', 'config.json'))).mode & 0o777).toBe(0o600);
  }, 120_000);
});
