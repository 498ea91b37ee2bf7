// `npm start` as a user runs it: the built api process in embedded mode, with its own Postgres,
// blob folder and job runner, started cold, stopped with Ctrl-C (SIGINT), killed, and restarted.
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort } from '@kura/core';
import { startKuraProcess, waitForHealthy, type KuraProcess } from '../support/processes.js';

describe('embedded mode (npm start)', () => {
  let scratch: string;
  let dataDir: string;
  let port: number;
  let baseUrl: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kura-embedded-'));
    await chmod(scratch, 0o755);
    // Kura creates the data folder itself, as on a first `npm start`.
    dataDir = join(scratch, 'data');
    port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  const start = () => startKuraProcess('api', { KURA_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1' });
  const stopWithCtrlC = async (kura: KuraProcess) => {
    kura.child.kill('SIGINT');
    expect(await kura.exited).toBe(0);
  };

  let robotId: string;
  let adminKey: string;

  it('starts cold (first initialisation included) and is healthy within 15 s', async () => {
    const kura = start();
    const startupMs = await waitForHealthy(baseUrl, kura);
    console.log(`embedded cold start: healthy after ${startupMs} ms`);
    expect(startupMs).toBeLessThan(15_000);

    const keyFile = join(dataDir, 'admin.key');
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    adminKey = (await readFile(keyFile, 'utf8')).trim();
    expect(kura.output()).toContain(adminKey);

    const robot = await fetch(`${baseUrl}/v1/robots`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'persisted', robotType: 'so101', controlFrequencyHz: 30, actionSpace: 'joint_position' }),
    });
    expect(robot.status).toBe(201);
    robotId = ((await robot.json()) as { id: string }).id;

    await stopWithCtrlC(kura);
    // Postgres shut down cleanly: it removes its lock file only then.
    await expect(stat(join(dataDir, 'pg', 'postmaster.pid'))).rejects.toThrow();
  });

  it('restarts with its data and admin key intact', async () => {
    const kura = start();
    await waitForHealthy(baseUrl, kura);
    const robot = await fetch(`${baseUrl}/v1/robots/${robotId}`, { headers: { Authorization: `Bearer ${adminKey}` } });
    expect(robot.status).toBe(200);
    expect(((await robot.json()) as { name: string }).name).toBe('persisted');
    expect(kura.output()).not.toContain('admin API key (shown once');
    await stopWithCtrlC(kura);
  });

  it('recovers after being killed: the orphaned Postgres is stopped and the data is there', async () => {
    const killed = start();
    await waitForHealthy(baseUrl, killed);
    killed.child.kill('SIGKILL');
    await killed.exited;

    const kura = start();
    await waitForHealthy(baseUrl, kura);
    expect(kura.output()).toContain('left running by an earlier Kura process');
    const robot = await fetch(`${baseUrl}/v1/robots/${robotId}`, { headers: { Authorization: `Bearer ${adminKey}` } });
    expect(robot.status).toBe(200);
    await stopWithCtrlC(kura);
  });

  it('refuses a bad configuration value, naming the variable', async () => {
    const kura = startKuraProcess('api', { KURA_DATA_DIR: dataDir, PORT: 'eighty' });
    expect(await kura.exited).toBe(1);
    expect(kura.output()).toContain('PORT');
  });
});
