// Zip uploads that expand far beyond their size (#19): entries sharing one compressed stream, and an
// archive within every per-entry ratio but over the whole-archive budget (KURA_ARCHIVE_MAX_EXPANSION).
import { crc32, deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../../../../test/support/app.js';
import { zipOf } from '../../../../test/support/archives.js';
import { createDataset, uploadAndWait } from '../../../../test/support/datasets.js';

/** `copies` central-directory entries, each pointing at the one deflated `data.ndjson` at offset 0. */
function overlappingZip(data: Buffer, copies: number): Buffer {
  const deflated = deflateRawSync(data);
  const firstName = Buffer.from('data.ndjson');
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc32(data), 14);
  local.writeUInt32LE(deflated.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(firstName.length, 26);
  const body = Buffer.concat([local, firstName, deflated]);
  const names = [firstName, ...Array.from({ length: copies }, (_, index) => Buffer.from(`copy-${index}.ndjson`))];
  const directory = Buffer.concat(
    names.map((name) => {
      const central = Buffer.alloc(46);
      central.writeUInt32LE(0x02014b50, 0);
      central.writeUInt16LE(20, 4);
      central.writeUInt16LE(20, 6);
      central.writeUInt16LE(8, 10);
      central.writeUInt32LE(crc32(data), 16);
      central.writeUInt32LE(deflated.length, 20);
      central.writeUInt32LE(data.length, 24);
      central.writeUInt16LE(name.length, 28);
      return Buffer.concat([central, name]);
    }),
  );
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(names.length, 8);
  end.writeUInt16LE(names.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(body.length, 16);
  return Buffer.concat([body, directory, end]);
}

describe('zip uploads past the expansion limits', () => {
  let kura: TestApp;
  let operator: { key: string };

  beforeAll(async () => {
    kura = await startTestApp({ KURA_ARCHIVE_MAX_EXPANSION: '4' });
    operator = await kura.createKey('operator');
  });
  afterAll(async () => {
    await kura.close();
  });

  const upload = async (zip: Buffer) =>
    uploadAndWait(kura, operator.key, await createDataset(kura, operator.key, 'private'), zip, {
      contentType: 'application/zip',
      timeoutMs: 30_000,
    });

  it('refuses 250 entries that all point at one 4 MiB entry with ARCHIVE_OVERLAPPING_ENTRIES, naming the entry', async () => {
    const zip = overlappingZip(Buffer.alloc(4 * 1024 * 1024, '{"episode":0}\n'), 249);
    expect(zip.length).toBeLessThan(116 * 1024);
    expect(await upload(zip)).toMatchObject({
      status: 'failed',
      errors: [{ code: 'ARCHIVE_OVERLAPPING_ENTRIES', location: { file: 'copy-0.ndjson' } }],
    });
  });

  it('refuses an archive over KURA_ARCHIVE_MAX_EXPANSION times its size with ARCHIVE_TOO_LARGE naming the limit', async () => {
    // Ten entries of 1 MiB, each within its own ratio (no entry is checked below 1 MiB), 10 MiB from a few KiB.
    const part = Buffer.alloc(1024 * 1024, '{"episode":0,"step":0,"action":[0]}\n');
    const zip = await zipOf(Object.fromEntries(Array.from({ length: 10 }, (_, index) => [`part-${index}.ndjson`, part])));
    expect(10 * part.length).toBeGreaterThan(4 * zip.length);
    expect(await upload(zip)).toMatchObject({
      status: 'failed',
      errors: [
        {
          code: 'ARCHIVE_TOO_LARGE',
          message: expect.stringMatching(/4 times its own size/),
          location: { file: expect.stringMatching(/^part-\d\.ndjson$/) },
          details: { limit: 'maxTotalExpansionRatio', value: 4 },
        },
      ],
    });
  });
});
