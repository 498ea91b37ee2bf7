// The built api in embedded mode (as `npm start` runs it) fed a zip whose headers understate an
// entry's size, 20 times: yauzl reported the surplus on a stream nobody listened to yet, and the
// unhandled 'error' ended the process (#19, intermittent: it depended on a folder being made first).
// Each upload must fail with a code and the process must stay up.
import { rm } from 'node:fs/promises';
import { crc32, deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startScratchApi, type KuraProcess } from '../support/processes.js';

/** One deflated entry in a folder whose local and central headers say it expands to 10 bytes. */
function lyingSizeZip(): Buffer {
  const name = Buffer.from('episodes/data.ndjson');
  const content = Buffer.from(Array.from({ length: 14 }, (_, step) => JSON.stringify({ episode: 0, step, action: [step] })).join('\n'));
  const data = deflateRawSync(content);
  const declaredSize = 10;
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc32(content), 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(declaredSize, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc32(content), 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(declaredSize, 24);
  central.writeUInt16LE(name.length, 28);
  const directoryOffset = local.length + name.length + data.length;
  const directory = Buffer.concat([central, name]);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(directoryOffset, 16);
  return Buffer.concat([local, name, data, directory, end]);
}

describe('a zip whose headers lie about sizes (embedded api process)', () => {
  let scratch: string;
  let kura: KuraProcess | undefined;
  let baseUrl: string;
  const adminKey = `kura_${'z'.repeat(43)}`;

  beforeAll(async () => {
    ({ scratch, kura, baseUrl } = await startScratchApi('hostile-zip', adminKey));
  }, 90_000);
  afterAll(async () => {
    if (kura && kura.child.exitCode === null) {
      kura.child.kill('SIGINT');
      await kura.exited;
    }
    await rm(scratch, { recursive: true, force: true });
  });

  const api = async (path: string, init: RequestInit = {}) => {
    let response: Response;
    try {
      response = await fetch(`${baseUrl}${path}`, { ...init, headers: { Authorization: `Bearer ${adminKey}`, ...(init.headers ?? {}) } });
    } catch (error) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      if (kura!.child.exitCode !== null)
        throw new Error(`Kura exited (${kura!.child.exitCode}):\n${kura!.output().slice(-3000)}`, { cause: error });
      throw error;
    }
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const postJson = (path: string, body: unknown) =>
    api(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

  it('fails each of 20 uploads with ARCHIVE_CORRUPT at the entry, and stays up', async () => {
    const robot = await postJson('/v1/robots', { name: 'r', robotType: 'r', controlFrequencyHz: 10, actionSpace: 'other' });
    const dataset = await postJson('/v1/datasets', { name: 'hostile-zip', robotId: robot.body.id, access: 'private' });
    const zip = lyingSizeZip();

    for (let attempt = 0; attempt < 20; attempt++) {
      const accepted = await api(`/v1/datasets/${String(dataset.body.id)}/uploads`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/zip', 'Idempotency-Key': `lying-${attempt}` },
        body: zip,
      });
      expect(accepted.status).toBe(202);
      let upload: Record<string, unknown> = {};
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        if (kura!.child.exitCode !== null) throw new Error(`Kura exited at upload ${attempt}:\n${kura!.output().slice(-4000)}`);
        upload = (await api(`/v1/uploads/${String(accepted.body.id)}`)).body;
        if (upload.status === 'failed' || upload.status === 'published') break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(upload).toMatchObject({
        status: 'failed',
        errors: [{ code: 'ARCHIVE_CORRUPT', location: { file: 'episodes/data.ndjson' } }],
      });
    }
    expect(kura!.child.exitCode).toBeNull();
    expect((await fetch(`${baseUrl}/health`)).status).toBe(200);
  });
});
