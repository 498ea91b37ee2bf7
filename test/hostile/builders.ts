// Byte builders for hostile inputs: tar and zip written field by field (so headers can lie, names can
// climb out and entries can share bytes), gzip, and the upload formats' own containers (parquet, HDF5,
// TFRecord) through the writers Kura's own tests use.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { Field, FixedSizeList, Float32, makeVector, Table, Utf8, vectorFromArray, type Vector } from 'apache-arrow';
import { arrowToParquet } from '../../packages/formats/src/parquet/export.js';
import { writeHdf5, type WritableData } from '../../packages/formats/src/hdf5/testing.js';
import { encodeExample, frameTfRecord, jpegHeaderOnly, type TestFeature } from '../../packages/formats/src/rlds/testing.js';
import { loadH5wasm } from '../../packages/formats/src/hdf5/h5.js';
import type { File as H5File } from 'h5wasm/node';

type H5wasm = typeof import('h5wasm/node');

export const gzip = (bytes: Uint8Array | string): Buffer => gzipSync(bytes);

// ------------------------------------------------------------------------------------------ tar

/** One tar entry, written as a ustar header (plus GNU long-name records where asked). */
export interface TarEntry {
  /** Bytes, so a name may hold anything (a NUL, invalid UTF-8). Longer than 100 bytes: split into prefix/name at a slash. */
  name: string | Buffer;
  /** ustar type flag: '0' file, '1' hard link, '2' symlink, '3' char device, '4' block device, '5' folder, '6' FIFO, 'L' GNU long name, 'x' pax. */
  type?: string;
  linkname?: string;
  data?: Uint8Array | string;
  /** The size the header declares, when it must differ from the data's. */
  declaredSize?: number;
  /** Corrupts the header checksum. */
  badChecksum?: boolean;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function tarHeader(entry: TarEntry, size: number): Buffer {
  const header = Buffer.alloc(512);
  const name = Buffer.isBuffer(entry.name) ? entry.name : Buffer.from(entry.name);
  if (name.length <= 100) name.copy(header, 0);
  else {
    const split = name.lastIndexOf(0x2f, name.length - 2);
    if (split > 0 && split <= 155 && name.length - split - 1 <= 100) {
      name.copy(header, 345, 0, split);
      name.copy(header, 0, split + 1);
    } else name.copy(header, 0, 0, 100);
  }
  header.write(octal(0o644, 8), 100, 'ascii');
  header.write(octal(0, 8), 108, 'ascii');
  header.write(octal(0, 8), 116, 'ascii');
  if (size < 8 ** 11) header.write(octal(size, 12), 124, 'ascii');
  else {
    // GNU base-256 for sizes past 8 GiB.
    header[124] = 0x80;
    header.writeBigUInt64BE(BigInt(size), 124 + 4);
  }
  header.write(octal(1_700_000_000, 12), 136, 'ascii');
  header.write(entry.type ?? '0', 156, 'ascii');
  if (entry.linkname) header.write(entry.linkname, 157, 100, 'utf8');
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  if (entry.badChecksum) sum += 1;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return header;
}

/** A tar of the entries; `end: false` leaves off the two zero blocks that close it. */
export function tar(entries: TarEntry[], options: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.data === undefined ? Buffer.alloc(0) : Buffer.from(entry.data);
    parts.push(tarHeader(entry, entry.declaredSize ?? data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (options.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A tar of plain files by path. */
export const tarOf = (files: Record<string, Uint8Array | string>): Buffer =>
  tar(Object.entries(files).map(([name, data]) => ({ name, data })));

// ------------------------------------------------------------------------------------------ zip

/** One zip entry: what its local header and central-directory record say. */
export interface ZipEntry {
  name: string | Buffer;
  /** The entry's content (compressed here with `method` 8 unless `raw` is given). */
  content?: Uint8Array | string;
  /** Bytes stored as the entry's data as they are (for lying or unsupported methods). */
  raw?: Uint8Array;
  method?: number;
  /** Sizes and CRC the headers declare, when they must lie. */
  declaredUncompressed?: number;
  declaredCrc?: number;
  /** Unix mode in the external attributes (0o120777 symlink, 0o020644 character device…). */
  unixMode?: number;
  /** General-purpose flags (1: encrypted). */
  flags?: number;
}

interface BuiltZipEntry {
  name: Buffer;
  data: Buffer;
  method: number;
  crc: number;
  compressed: number;
  uncompressed: number;
  unixMode: number;
  flags: number;
}

function buildZipEntry(entry: ZipEntry): BuiltZipEntry {
  const name = Buffer.isBuffer(entry.name) ? entry.name : Buffer.from(entry.name);
  const content = Buffer.from(entry.content ?? '');
  const method = entry.method ?? (entry.raw ? 0 : 8);
  const data = entry.raw ? Buffer.from(entry.raw) : method === 8 ? deflateRawSync(content) : content;
  return {
    name,
    data,
    method,
    crc: entry.declaredCrc ?? crc32(content),
    compressed: data.length,
    uncompressed: entry.declaredUncompressed ?? content.length,
    unixMode: entry.unixMode ?? 0o100644,
    flags: entry.flags ?? 0,
  };
}

function localHeader(entry: BuiltZipEntry): Buffer {
  const header = Buffer.alloc(30);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(20, 4);
  header.writeUInt16LE(entry.flags, 6);
  header.writeUInt16LE(entry.method, 8);
  header.writeUInt32LE(entry.crc >>> 0, 14);
  header.writeUInt32LE(entry.compressed, 18);
  header.writeUInt32LE(entry.uncompressed >>> 0, 22);
  header.writeUInt16LE(entry.name.length, 26);
  return Buffer.concat([header, entry.name]);
}

function centralRecord(entry: BuiltZipEntry, offset: number): Buffer {
  const record = Buffer.alloc(46);
  record.writeUInt32LE(0x02014b50, 0);
  record.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, so the external attributes hold a Unix mode
  record.writeUInt16LE(20, 6);
  record.writeUInt16LE(entry.flags, 8);
  record.writeUInt16LE(entry.method, 10);
  record.writeUInt32LE(entry.crc >>> 0, 16);
  record.writeUInt32LE(entry.compressed, 20);
  record.writeUInt32LE(entry.uncompressed >>> 0, 24);
  record.writeUInt16LE(entry.name.length, 28);
  record.writeUInt32LE((entry.unixMode << 16) >>> 0, 38);
  record.writeUInt32LE(offset, 42);
  return Buffer.concat([record, entry.name]);
}

/** The end-of-central-directory record: how many entries (as declared), the directory's size and offset. */
function endOfCentralDirectory(count: number, size: number, offset: number): Buffer {
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(count, 8);
  end.writeUInt16LE(count, 10);
  end.writeUInt32LE(size, 12);
  end.writeUInt32LE(offset, 16);
  return end;
}

/** A zip of the entries, each with its local header and data, then the central directory. */
export function zip(entries: ZipEntry[], options: { declaredCount?: number; directoryOffsetShift?: number } = {}): Buffer {
  const built = entries.map(buildZipEntry);
  const locals: Buffer[] = [];
  const offsets: number[] = [];
  let offset = 0;
  for (const entry of built) {
    offsets.push(offset);
    const local = Buffer.concat([localHeader(entry), entry.data]);
    locals.push(local);
    offset += local.length;
  }
  const directory = Buffer.concat(built.map((entry, index) => centralRecord(entry, offsets[index]!)));
  return Buffer.concat([
    ...locals,
    directory,
    endOfCentralDirectory(options.declaredCount ?? built.length, directory.length, offset + (options.directoryOffsetShift ?? 0)),
  ]);
}

/** A zip of plain deflated files by path. */
export const zipOf = (files: Record<string, Uint8Array | string>): Buffer =>
  zip(Object.entries(files).map(([name, content]) => ({ name, content })));

/**
 * A zip whose `count` central-directory records (named differently) all point at one local entry:
 * the "overlapping entries" bomb, each record passing its own ratio check.
 */
export function overlappingZip(count: number, content: Uint8Array): Buffer {
  const entry = buildZipEntry({ name: 'data/0.bin', content });
  const local = Buffer.concat([localHeader(entry), entry.data]);
  const directory = Buffer.concat(
    Array.from({ length: count }, (_, index) => centralRecord({ ...entry, name: Buffer.from(`data/${index}.bin`) }, 0)),
  );
  return Buffer.concat([local, directory, endOfCentralDirectory(count, directory.length, local.length)]);
}

// ------------------------------------------------------------------------------------------ Kura NDJSON

/** Kura NDJSON step lines of `episodes` episodes × `steps` steps (state [2], action [2]); `edit` changes a line's object. */
export function ndjson(
  options: { episodes?: number; steps?: number; edit?: (line: Record<string, unknown>, episode: number, step: number) => void } = {},
): string {
  const lines: string[] = [];
  for (let episode = 0; episode < (options.episodes ?? 1); episode++) {
    for (let step = 0; step < (options.steps ?? 3); step++) {
      const line: Record<string, unknown> = {
        episode,
        step,
        observation: { state: [episode + step / 10, 0.5] },
        action: [step, -step],
        language: 'pick up the cube',
      };
      options.edit?.(line, episode, step);
      lines.push(JSON.stringify(line));
    }
  }
  return `${lines.join('\n')}\n`;
}

// ------------------------------------------------------------------------------------------ parquet (LeRobot)

/** A column of a LeRobot parquet file: fixed-size float lists, float64s, int64s or strings. */
export type ParquetColumn =
  | { kind: 'floats'; size: number; rows: number[][] }
  | { kind: 'float32'; rows: number[] }
  | { kind: 'float64'; rows: number[] }
  | { kind: 'int64'; rows: number[] }
  | { kind: 'string'; rows: string[] };

function vectorOf(column: ParquetColumn): Vector {
  switch (column.kind) {
    case 'floats':
      return vectorFromArray(
        column.rows.map((row) => Float32Array.from(row)),
        new FixedSizeList(column.size, new Field('item', new Float32(), true)),
      );
    case 'float32':
      return makeVector(Float32Array.from(column.rows));
    case 'float64':
      return makeVector(Float64Array.from(column.rows));
    case 'int64':
      return makeVector(BigInt64Array.from(column.rows.map((value) => BigInt(value))));
    case 'string':
      return vectorFromArray(column.rows, new Utf8());
  }
}

/** A parquet file of the columns (all of one length), written by Kura's own parquet writer. */
export async function parquet(columns: Record<string, ParquetColumn>): Promise<Buffer> {
  const table = new Table(Object.fromEntries(Object.entries(columns).map(([name, column]) => [name, vectorOf(column)])));
  const chunks: Uint8Array[] = [];
  for await (const chunk of arrowToParquet({ schema: table.schema, batches: table.batches })) chunks.push(chunk);
  return Buffer.concat(chunks);
}

// ------------------------------------------------------------------------------------------ HDF5

/** An HDF5 file's bytes, written with h5wasm (datasets by path, attributes by object path). */
export async function hdf5(
  datasets: Record<string, { data: WritableData; shape: number[] }>,
  attributes: Record<string, Record<string, string | number>> = {},
  extra?: (file: H5File, h5wasm: H5wasm) => void,
): Promise<Buffer> {
  const folder = await mkdtemp(join(tmpdir(), 'kura-hostile-h5-'));
  try {
    const path = join(folder, 'episode.hdf5');
    await writeHdf5(path, datasets, attributes);
    if (extra) {
      const h5wasm = await loadH5wasm();
      const file = new h5wasm.File(path, 'a');
      try {
        extra(file, h5wasm);
      } finally {
        file.close();
      }
    }
    return await readFile(path);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** An ALOHA episode's datasets: /action and /observations/qpos of `steps` × `joints` float32. */
export function alohaDatasets(steps = 4, joints = 14): Record<string, { data: Float32Array; shape: number[] }> {
  return {
    '/action': { data: Float32Array.from({ length: steps * joints }, (_, index) => index / 100), shape: [steps, joints] },
    '/observations/qpos': { data: Float32Array.from({ length: steps * joints }, (_, index) => 0.5 + index / 10), shape: [steps, joints] },
  };
}

/** A robomimic file's datasets: data/demo_0 with actions and obs/state. */
export function robomimicDatasets(steps = 5, demo = 'demo_0'): Record<string, { data: Float32Array; shape: number[] }> {
  return {
    [`/data/${demo}/actions`]: { data: Float32Array.from({ length: steps * 7 }, (_, index) => index / 7), shape: [steps, 7] },
    [`/data/${demo}/obs/robot0_eef_pos`]: { data: Float32Array.from({ length: steps * 3 }, (_, index) => index), shape: [steps, 3] },
  };
}

// ------------------------------------------------------------------------------------------ TFRecord

/** One TFRecord file of the given Examples' payloads (or raw payloads). */
export function tfrecord(records: Array<Record<string, TestFeature> | Uint8Array>): Buffer {
  return Buffer.concat(records.map((record) => Buffer.from(frameTfRecord(record instanceof Uint8Array ? record : encodeExample(record)))));
}

/** A small RLDS episode: `steps` steps of a 3-D action and a 2-D state, with the flags. */
export function rldsEpisode(steps = 3): Record<string, TestFeature> {
  return {
    'steps/action': { floats: Array.from({ length: steps * 3 }, (_, index) => index / 3) },
    'steps/observation/state': { floats: Array.from({ length: steps * 2 }, (_, index) => index / 2) },
    'steps/reward': { floats: Array.from({ length: steps }, () => 0) },
    'steps/is_first': { int64s: Array.from({ length: steps }, (_, step) => (step === 0 ? 1 : 0)) },
    'steps/is_last': { int64s: Array.from({ length: steps }, (_, step) => (step === steps - 1 ? 1 : 0)) },
    'steps/is_terminal': { int64s: Array.from({ length: steps }, (_, step) => (step === steps - 1 ? 1 : 0)) },
    'steps/language_instruction': { bytes: Array.from({ length: steps }, () => 'stack the blocks') },
  };
}

export { encodeExample, frameTfRecord, jpegHeaderOnly, type TestFeature };

// ------------------------------------------------------------------------------------------ HDF5 retargeting

/** Bob Jenkins' lookup3 `hashlittle`, byte by byte: HDF5's metadata checksum (H5_checksum_lookup3). */
function lookup3(bytes: Uint8Array, initial = 0): number {
  const rotate = (value: number, bits: number) => ((value << bits) | (value >>> (32 - bits))) >>> 0;
  let a = (0xdeadbeef + bytes.length + initial) >>> 0;
  let b = a;
  let c = a;
  let offset = 0;
  let length = bytes.length;
  const word = (at: number) => (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
  while (length > 12) {
    a = (a + word(offset)) >>> 0;
    b = (b + word(offset + 4)) >>> 0;
    c = (c + word(offset + 8)) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rotate(c, 4)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rotate(a, 6)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rotate(b, 8)) >>> 0;
    b = (b + a) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rotate(c, 16)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rotate(a, 19)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rotate(b, 4)) >>> 0;
    b = (b + a) >>> 0;
    offset += 12;
    length -= 12;
  }
  if (length === 0) return c;
  // The tail: bytes 0-3 into a, 4-7 into b, 8-11 into c, little-endian.
  const tail = [0, 0, 0];
  for (let index = 0; index < length; index++) {
    const slot = Math.floor(index / 4);
    tail[slot] = tail[slot]! + bytes[offset + index]! * 2 ** (8 * (index % 4));
  }
  a = (a + tail[0]!) >>> 0;
  b = (b + tail[1]!) >>> 0;
  c = (c + tail[2]!) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rotate(b, 14)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rotate(c, 11)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rotate(a, 25)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rotate(b, 16)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rotate(c, 4)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rotate(a, 14)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rotate(b, 24)) >>> 0;
  return c;
}

/**
 * An HDF5 file with every `from` path replaced by `to` (the same length), e.g. to point a committed
 * external-storage or virtual-dataset fixture at this run's canary. Global-heap objects that carry a
 * lookup3 checksum (a virtual dataset's mapping) get it recomputed, so the file stays valid.
 */
export function retargetHdf5(original: Uint8Array, from: string, to: string): Buffer {
  if (Buffer.byteLength(from) !== Buffer.byteLength(to)) throw new Error(`retargetHdf5: "${from}" and "${to}" differ in length`);
  const source = Buffer.from(original);
  const patched = Buffer.from(source.toString('latin1').replaceAll(from, to), 'latin1');
  for (let collection = source.indexOf('GCOL'); collection >= 0; collection = source.indexOf('GCOL', collection + 4)) {
    const end = collection + Number(source.readBigUInt64LE(collection + 8));
    let object = collection + 16;
    while (object + 16 <= end) {
      const index = source.readUInt16LE(object);
      const size = Number(source.readBigUInt64LE(object + 8));
      if (index === 0 || size < 4) break;
      const data = object + 16;
      const stored = source.readUInt32LE(data + size - 4);
      if (lookup3(source.subarray(data, data + size - 4)) === stored)
        patched.writeUInt32LE(lookup3(patched.subarray(data, data + size - 4)), data + size - 4);
      object = data + Math.ceil(size / 8) * 8;
    }
  }
  return patched;
}
