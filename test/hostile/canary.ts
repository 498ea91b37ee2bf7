// Host files no upload, bundle or request may ever read. Each holds bytes found nowhere else: a text
// token, and float values (exact in float32 and float64) where HDF5 external storage would read them.
// Anything Kura says or stores is scanned for all of them. The token starts with letters and its first
// ten characters are distinctive on their own: parsers quote about that much of bad input in their
// messages (`Unexpected token 'k', "kc5f0e2a9b"... is not valid JSON`).
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadH5wasm } from '../../packages/formats/src/hdf5/h5.js';

/** How many float64 values lead canary.bin: what the committed HDF5 external fixtures read (4 steps × 14 joints). */
export const CANARY_VALUES = 56;

export interface Canary {
  /** Text that appears in every canary file and nowhere else (its first 10 characters count as a find too). */
  token: string;
  /** Numbers at the start of canary.bin (and in canary.h5:/qpos), as an importer would read them. */
  values: Float64Array;
  /** `<scratch>/canary` and `/tmp/kura-canary-XXXX` (21 characters, the length the HDF5 fixtures' folder has). */
  folders: { scratch: string; tmp: string };
  /** canary.txt (the token, for links and traversals) in each folder. */
  textFiles: string[];
  /** What would show that a canary was read: undefined when `content` holds none of it. */
  findIn(content: string | Uint8Array): string | undefined;
  remove(): Promise<void>;
}

export async function plantCanaries(scratch: string): Promise<Canary> {
  const token = `kc${randomBytes(12).toString('hex')}`;
  const tokenStart = token.slice(0, 10);
  // x.5 below 2^23: exact in float32, so a float32 copy keeps the same decimal text.
  const base = 4_000_000 + (randomBytes(2).readUInt16LE(0) % 1000) * 1000;
  const values = Float64Array.from({ length: CANARY_VALUES }, (_, index) => base + index + 0.5);
  const folders = { scratch: join(scratch, 'canary'), tmp: `/tmp/kura-canary-${randomBytes(2).toString('hex')}` };
  const text = `${token} is a canary: no upload may read this file\n`.repeat(64);
  const binary = Buffer.concat([Buffer.from(values.buffer), Buffer.from(`\n${text}`)]);
  const h5wasm = await loadH5wasm();
  for (const folder of Object.values(folders)) {
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'canary.txt'), text);
    await writeFile(join(folder, 'canary.bin'), binary);
    // The target of the virtual-dataset fixture and of external links: /qpos and /observations/qpos.
    const file = new h5wasm.File(join(folder, 'canary.h5'), 'w');
    try {
      file.create_dataset({ name: 'qpos', data: values, shape: [4, 14] });
      file.create_group('observations');
      file.create_dataset({ name: 'observations/qpos', data: values, shape: [4, 14] });
    } finally {
      file.close();
    }
  }
  const float32 = Buffer.from(Float32Array.from(values.subarray(0, 4)).buffer);
  const float64 = Buffer.from(values.subarray(0, 2).buffer);
  const texts = Array.from(values, (value) => String(value));
  const tokenBytes = Buffer.from(tokenStart);
  return {
    token,
    values,
    folders,
    textFiles: Object.values(folders).map((folder) => join(folder, 'canary.txt')),
    findIn(content) {
      if (typeof content === 'string') {
        if (content.includes(tokenStart)) return 'the canary token';
        const number = texts.find((value) => content.includes(value));
        return number === undefined ? undefined : `the canary value ${number}`;
      }
      const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
      if (bytes.includes(tokenBytes)) return 'the canary token';
      if (bytes.includes(float64)) return 'canary values as float64';
      if (bytes.includes(float32)) return 'canary values as float32';
      return undefined;
    },
    async remove() {
      for (const folder of Object.values(folders)) await rm(folder, { recursive: true, force: true });
    },
  };
}
