import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { NpyWriter, npyHeader } from './npy-writer.js';

/** Reads an .npy file the way NumPy does: magic, version, header dict, then the data. */
function parseNpy(bytes: Buffer): { header: string; data: Buffer } {
  expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]));
  const length = bytes.readUInt16LE(8);
  return { header: bytes.subarray(10, 10 + length).toString('latin1'), data: bytes.subarray(10 + length) };
}

describe('.npy files written as rows arrive', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'kura-npy-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('writes a header NumPy reads (64-byte aligned, newline-terminated) with the final row count', async () => {
    const path = join(directory, 'state.npy');
    const writer = await NpyWriter.create(path, 'float32', [3]);
    await writer.append(new Float32Array([1, 2, 3, 4, 5, 6]));
    await writer.append(new Float32Array([7, 8, 9]));
    expect(await writer.close()).toEqual({ rows: 3, bytes: 256 + 36 });
    const { header, data } = parseNpy(await readFile(path));
    expect(header.trimEnd()).toBe("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }");
    expect((10 + header.length) % 64).toBe(0);
    expect(header.endsWith('\n')).toBe(true);
    expect(Array.from(new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)))).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
  });

  it('writes a one-dimensional array as (N,) and an empty one as (0,)', async () => {
    const path = join(directory, 'index.npy');
    const writer = await NpyWriter.create(path, 'int64', []);
    await writer.append(new BigInt64Array([5n, 6n]));
    await writer.close();
    expect(parseNpy(await readFile(path)).header).toContain("'descr': '<i8', 'fortran_order': False, 'shape': (2,)");
    const empty = await NpyWriter.create(join(directory, 'empty.npy'), 'uint8', [2, 2]);
    expect(await empty.close()).toEqual({ rows: 0, bytes: 256 });
    expect(parseNpy(await readFile(join(directory, 'empty.npy'))).header).toContain("'shape': (0, 2, 2)");
  });

  it('refuses values that are not whole rows, and a file that exists', async () => {
    const writer = await NpyWriter.create(join(directory, 'rows.npy'), 'float64', [2]);
    await expect(writer.append(new Float64Array(3))).rejects.toThrow('not whole rows');
    await writer.abandon();
    await expect(NpyWriter.create(join(directory, 'rows.npy'), 'float64', [2])).rejects.toThrow('EEXIST');
  });

  it('keeps large shapes inside the reserved header', () => {
    expect(npyHeader('<f4', 1e12, [1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000]).length).toBe(
      256,
    );
  });

  it("hands its flush hook whole rows, in order, and keeps none of the caller's buffers", async () => {
    const path = join(directory, 'flushed-rows.npy');
    const flushed: Float32Array[] = [];
    // 14 floats a row: 56 bytes, which 1 MiB is not a multiple of.
    const writer = await NpyWriter.create(path, 'float32', [14], async (rows) => {
      expect(rows.byteLength % 56).toBe(0);
      flushed.push(new Float32Array(new Uint8Array(rows).buffer));
    });
    const rows = 40_000;
    const input = Float32Array.from({ length: rows * 14 }, (_, index) => index);
    for (let row = 0; row < rows; row += 100) {
      const part = input.slice(row * 14, (row + 100) * 14);
      await writer.append(part);
      part.fill(-1); // the writer copied it
    }
    expect(await writer.close()).toEqual({ rows, bytes: 256 + rows * 56 });
    expect(flushed.length).toBeGreaterThan(1);
    const seen = new Float32Array(flushed.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of flushed) seen.set(part, (at += part.length) - part.length);
    expect(seen).toEqual(input);
    const { data } = parseNpy(await readFile(path));
    expect(new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length))).toEqual(input);
  });
});
