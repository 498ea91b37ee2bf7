import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, createGzip, deflateRawSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import tarStream, { type Headers as TarHeaders } from 'tar-stream';
import yazl from 'yazl';
import { type ArchiveKind, type ArchiveLimits, detectArchiveKind, extractArchive } from './archive.js';

// Every archive here is generated at test time: tar-stream's pack() and gzip for tar, yazl for zip, and a
// small hand-written zip/tar writer for the hostile entries those libraries rightly refuse to produce.

const MiB = 1024 * 1024;
/** Streams hand data on in chunks of at most this much (fs reads 64 KiB, zlib emits 16 KiB). */
const oneChunk = 64 * 1024;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kura-archive-spec-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface TarEntrySpec {
  header: TarHeaders;
  data?: Buffer | string;
}

async function tarBytes(entries: TarEntrySpec[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk);
  })();
  for (const { header, data } of entries) {
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error | null): void => (error ? reject(error) : resolve());
      if (data === undefined) pack.entry(header, done);
      else pack.entry(header, typeof data === 'string' ? Buffer.from(data) : data, done);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

const file = (name: string, data: Buffer | string): TarEntrySpec => ({ header: { name, type: 'file' }, data });
const folder = (name: string): TarEntrySpec => ({ header: { name, type: 'directory' } });

/** A ustar header block written by hand, for entries tar-stream's pack() will not write (a pax header of any size). */
function ustarHeader(name: string, size: number, typeflag: string): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, 100, 'utf8');
  block.write('0000644\0', 100);
  block.write('0000000\0', 108);
  block.write('0000000\0', 116);
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  block.write('00000000000\0', 136);
  block.write(' '.repeat(8), 148);
  block.write(typeflag, 156);
  block.write('ustar\0', 257);
  block.write('00', 263);
  const checksum = block.reduce((sum, byte) => sum + byte, 0);
  block.write(`${checksum.toString(8).padStart(6, '0')}\0 `, 148);
  return block;
}

async function yazlBytes(build: (zip: yazl.ZipFile) => void): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  build(zip);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

interface RawZipEntry {
  name: string | Buffer;
  data?: Buffer;
  /** 0 stored, 8 deflated, anything else as is (the data is then stored bytes). */
  method?: number;
  /** Overrides of what the headers say. */
  uncompressedSize?: number;
  crc?: number;
  /** Unix mode (file type and permissions), stored in the upper half of the external attributes. */
  unixMode?: number;
}

/** A minimal zip writer (local headers, central directory, end record) that writes whatever it is told. */
function rawZip(entries: RawZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = typeof entry.name === 'string' ? Buffer.from(entry.name, 'utf8') : entry.name;
    const data = entry.data ?? Buffer.alloc(0);
    const method = entry.method ?? 0;
    const stored = method === 8 ? deflateRawSync(data) : data;
    const crc = entry.crc ?? crc32(data);
    const uncompressedSize = entry.uncompressedSize ?? data.length;

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(stored.length, 18);
    local.writeUInt32LE(uncompressedSize, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(0x031e, 4); // made by Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(stored.length, 20);
    central.writeUInt32LE(uncompressedSize, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((entry.unixMode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);

    locals.push(local, name, stored);
    centrals.push(central, name);
    offset += local.length + name.length + stored.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/**
 * A zip whose first entry's bytes are also claimed by `extraNames` entries: all at the same local
 * header (`shared`), or each one's local header and data inside the previous entry's stored data
 * (`nested`). Overlapping entries are how a small zip expands to many times its size with every entry
 * inside its own ratio.
 */
function overlappingZip(data: Buffer, extraNames: string[], layout: 'shared' | 'nested'): Buffer {
  const names = ['first.bin', ...extraNames].map((name) => Buffer.from(name, 'utf8'));
  const local = (name: Buffer, stored: Buffer, method: number, size: number, crc: number): Buffer => {
    const header = Buffer.alloc(30);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(0x800, 6);
    header.writeUInt16LE(method, 8);
    header.writeUInt16LE(0x21, 12);
    header.writeUInt32LE(crc, 14);
    header.writeUInt32LE(stored.length, 18);
    header.writeUInt32LE(size, 22);
    header.writeUInt16LE(name.length, 26);
    return Buffer.concat([header, name, stored]);
  };
  // Each record: what the central directory says of one entry.
  const records: Array<{ name: Buffer; method: number; compressed: number; size: number; crc: number; offset: number }> = [];
  let body: Buffer;
  if (layout === 'shared') {
    const deflated = deflateRawSync(data);
    body = local(names[0]!, deflated, 8, data.length, crc32(data));
    for (const name of names)
      records.push({ name, method: 8, compressed: deflated.length, size: data.length, crc: crc32(data), offset: 0 });
  } else {
    // Innermost first: each entry stores the next one's whole local record after its own data.
    let inner: Buffer = Buffer.alloc(0);
    const reversed = [...names].reverse();
    const sizes: number[] = [];
    for (const name of reversed) {
      const stored = Buffer.concat([data, inner]);
      inner = local(name, stored, 0, stored.length, crc32(stored));
      sizes.unshift(stored.length);
    }
    body = inner;
    let offset = 0;
    names.forEach((name, index) => {
      const size = sizes[index]!;
      records.push({
        name,
        method: 0,
        compressed: size,
        size,
        crc: crc32(body.subarray(offset + 30 + name.length, offset + 30 + name.length + size)),
        offset,
      });
      offset += 30 + name.length + data.length;
    });
  }
  const centrals = records.map(({ name, method, compressed, size, crc, offset }) => {
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(0x031e, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressed, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE((0o100644 << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    return Buffer.concat([central, name]);
  });
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(records.length, 8);
  end.writeUInt16LE(records.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(body.length, 16);
  return Buffer.concat([body, directory, end]);
}

interface Case {
  /** Holds the archive and the destination, and nothing else. */
  work: string;
  archive: string;
  destination: string;
}

const extensions: Record<ArchiveKind, string> = { tar: 'tar', 'tar.gz': 'tar.gz', zip: 'zip' };

async function newCase(kind: ArchiveKind, bytes: Buffer): Promise<Case> {
  const work = await mkdtemp(join(root, 'case-'));
  const archive = join(work, `upload.${extensions[kind]}`);
  await writeFile(archive, bytes);
  return { work, archive, destination: join(work, 'out') };
}

function extract(kind: ArchiveKind, testCase: Case, limits?: Partial<ArchiveLimits>) {
  return extractArchive({ file: testCase.archive, kind, destination: testCase.destination, ...(limits === undefined ? {} : { limits }) });
}

async function extractBytes(kind: ArchiveKind, bytes: Buffer, limits?: Partial<ArchiveLimits>) {
  const testCase = await newCase(kind, bytes);
  return { testCase, result: await extract(kind, testCase, limits) };
}

/** Everything under a folder: files with their contents, folders as null. */
async function tree(folderPath: string): Promise<Record<string, string | null>> {
  const result: Record<string, string | null> = {};
  for (const entry of await readdir(folderPath, { withFileTypes: true, recursive: true })) {
    const absolute = join(entry.parentPath, entry.name);
    const relative = absolute
      .slice(folderPath.length + 1)
      .split('\\')
      .join('/');
    result[relative] = entry.isDirectory() ? null : await readFile(absolute, 'latin1');
  }
  return result;
}

async function bytesOnDisk(folderPath: string): Promise<number> {
  if (!existsSync(folderPath)) return 0;
  let total = 0;
  for (const entry of await readdir(folderPath, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** Asserts the promise rejects with an ImportError of that code (and entry), and that nothing left the case's folder. */
async function expectRefusal(
  promise: Promise<unknown>,
  testCase: Case,
  expected: { code: string; file?: string; message?: RegExp },
): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toMatchObject({
    name: 'ImportError',
    code: expected.code,
    ...(expected.file === undefined ? {} : { location: { file: expected.file } }),
  });
  if (expected.message !== undefined) expect(error).toHaveProperty('message', expect.stringMatching(expected.message));
  const left = (await readdir(testCase.work)).filter((name) => name !== 'out' && !name.startsWith('upload.'));
  expect(left).toEqual([]);
}

async function refuse(
  kind: ArchiveKind,
  bytes: Buffer,
  expected: { code: string; file?: string; message?: RegExp },
  limits?: Partial<ArchiveLimits>,
): Promise<Case> {
  const testCase = await newCase(kind, bytes);
  await expectRefusal(extract(kind, testCase, limits), testCase, expected);
  return testCase;
}

// A small LeRobot-like folder, with bytes that are not text.
const parquetBytes = randomBytes(3000).toString('latin1');
const folderContents: Record<string, string> = {
  'meta/info.json': '{"fps":30,"robot_type":"so101"}',
  'meta/tasks.jsonl': '{"task_index":0,"task":"pick the cube"}\n',
  'data/chunk-000/episode_000000.parquet': parquetBytes,
  'README.md': '# demo\n',
};

async function folderArchive(kind: ArchiveKind): Promise<Buffer> {
  if (kind === 'zip') {
    return yazlBytes((zip) => {
      for (const [path, content] of Object.entries(folderContents)) zip.addBuffer(Buffer.from(content, 'latin1'), path);
    });
  }
  const tar = await tarBytes([
    folder('meta'),
    ...Object.entries(folderContents).map(([path, content]) => file(path, Buffer.from(content, 'latin1'))),
  ]);
  return kind === 'tar' ? tar : gzipSync(tar);
}

const kinds: ArchiveKind[] = ['tar', 'tar.gz', 'zip'];

describe('detectArchiveKind', () => {
  it.each(kinds)('recognises a %s', async (kind) => {
    expect(detectArchiveKind((await folderArchive(kind)).subarray(0, 512))).toBe(kind);
  });

  it('recognises an empty zip by its end record', async () => {
    const empty = await yazlBytes(() => undefined);
    expect(empty.subarray(0, 4)).toEqual(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    expect(detectArchiveKind(empty)).toBe('zip');
  });

  it.each([
    ['JSON', Buffer.from(`{"episodes": [${'1,'.repeat(300)}1]}`)],
    ['HDF5', Buffer.concat([Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(1024)])],
    // A TFRecord: uint64 length, masked CRC of the length, the record, masked CRC of the record.
    [
      'TFRecord',
      Buffer.concat([
        Buffer.from([0x0c, 0, 0, 0, 0, 0, 0, 0, 0x9a, 0x1b, 0x2c, 0x3d]),
        Buffer.from('\n\nfeatures..'),
        Buffer.alloc(600, 7),
      ]),
    ],
    ['a short head', Buffer.from([0x50, 0x4b])],
    ['nothing', Buffer.alloc(0)],
  ])('returns undefined for %s', (_label, head) => {
    expect(detectArchiveKind(head)).toBeUndefined();
  });
});

describe('extractArchive', () => {
  it.each(kinds)('extracts a %s of a folder exactly', async (kind) => {
    const { testCase, result } = await extractBytes(kind, await folderArchive(kind));

    const expectedFiles = Object.entries(folderContents).map(([path, content]) => ({ path, bytes: Buffer.byteLength(content, 'latin1') }));
    expect([...result.files].sort((a, b) => a.path.localeCompare(b.path))).toEqual(
      expectedFiles.sort((a, b) => a.path.localeCompare(b.path)),
    );
    expect(await tree(testCase.destination)).toEqual({
      ...folderContents,
      meta: null,
      data: null,
      'data/chunk-000': null,
    });
  });

  it('extracts deeply nested folders, long (pax) names, "./" prefixes and empty files from a tar', async () => {
    const longName = `${'deep/'.repeat(30)}episode_${'0'.repeat(80)}.hdf5`;
    const { testCase, result } = await extractBytes(
      'tar',
      await tarBytes([folder('./'), folder('./a/'), file('./a/b/c/d.txt', 'd'), file(longName, 'long'), file('empty.bin', '')]),
    );

    expect(result.files).toEqual([
      { path: 'a/b/c/d.txt', bytes: 1 },
      { path: longName, bytes: 4 },
      { path: 'empty.bin', bytes: 0 },
    ]);
    const extracted = await tree(testCase.destination);
    expect(extracted['a/b/c/d.txt']).toBe('d');
    expect(extracted[longName]).toBe('long');
    expect(extracted['empty.bin']).toBe('');
  });

  it('creates folders from zip directory entries and skips macOS metadata', async () => {
    const hdf5 = randomBytes(2048);
    const zip = await yazlBytes((archive) => {
      archive.addEmptyDirectory('episodes/');
      archive.addBuffer(hdf5, 'episodes/episode_0.hdf5');
      archive.addEmptyDirectory('empty/');
      archive.addBuffer(Buffer.from('mac'), 'episodes/.DS_Store');
      archive.addBuffer(Buffer.from('appledouble'), 'episodes/._episode_0.hdf5');
      archive.addEmptyDirectory('__MACOSX/');
      archive.addEmptyDirectory('__MACOSX/episodes/');
      archive.addBuffer(Buffer.from('appledouble'), '__MACOSX/episodes/._episode_0.hdf5');
    });
    const { testCase, result } = await extractBytes('zip', zip);

    expect(result.files).toEqual([{ path: 'episodes/episode_0.hdf5', bytes: 2048 }]);
    expect(await tree(testCase.destination)).toEqual({ episodes: null, 'episodes/episode_0.hdf5': hdf5.toString('latin1'), empty: null });
  });

  it('takes backslashes in zip names as folder separators (older Windows tools write them)', async () => {
    const { testCase, result } = await extractBytes('zip', rawZip([{ name: 'data\\chunk-000\\file.txt', data: Buffer.from('x') }]));
    expect(result.files).toEqual([{ path: 'data/chunk-000/file.txt', bytes: 1 }]);
    expect(await tree(testCase.destination)).toEqual({ data: null, 'data/chunk-000': null, 'data/chunk-000/file.txt': 'x' });
  });

  it('extracts stored and deflated zip entries, checking their CRC-32', async () => {
    const data = Buffer.from('stored and deflated '.repeat(100));
    const { result } = await extractBytes(
      'zip',
      rawZip([
        { name: 'stored.txt', data },
        { name: 'deflated.txt', data, method: 8 },
      ]),
    );
    expect(result.files).toEqual([
      { path: 'stored.txt', bytes: data.length },
      { path: 'deflated.txt', bytes: data.length },
    ]);
  });

  describe('refuses paths that leave the destination', () => {
    const absolute = join(tmpdir(), `kura-archive-absolute-${randomBytes(6).toString('hex')}`);

    it.each([
      ['../evil', '../evil'],
      ['an absolute path', absolute],
      ['a/../../evil', 'a/../../evil'],
      ['a ..\\ segment', '..\\evil'],
      ['a drive letter', 'C:\\evil'],
      ['a drive letter with /', 'C:/evil'],
    ])('tar entry with %s', async (_label, name) => {
      await refuse('tar', await tarBytes([file('ok.txt', 'ok'), file(name, 'evil')]), { code: 'ARCHIVE_PATH_TRAVERSAL', file: name });
      expect(existsSync(absolute)).toBe(false);
    });

    it('tar.gz entry with ../', async () => {
      await refuse('tar.gz', gzipSync(await tarBytes([file('../../evil', 'evil')])), {
        code: 'ARCHIVE_PATH_TRAVERSAL',
        file: '../../evil',
      });
    });

    it('tar entry whose (pax) name has a NUL byte', async () => {
      // Non-ASCII makes tar-stream write the name into a pax header, which keeps the NUL.
      await refuse('tar', await tarBytes([file('é/safe\0../../evil', 'evil')]), {
        code: 'ARCHIVE_PATH_TRAVERSAL',
        file: 'é/safe\\x00../../evil',
      });
    });

    it.each([
      ['../evil', '../evil'],
      ['an absolute path', absolute],
      ['a ..\\ segment', '..\\evil'],
      ['a nested ..\\ segment', 'data\\..\\..\\evil'],
      ['a drive letter', 'C:\\evil'],
    ])('zip entry with %s', async (_label, name) => {
      await refuse(
        'zip',
        rawZip([
          { name: 'ok.txt', data: Buffer.from('ok') },
          { name, data: Buffer.from('evil') },
        ]),
        { code: 'ARCHIVE_PATH_TRAVERSAL', file: name },
      );
      expect(existsSync(absolute)).toBe(false);
    });

    it('zip entry whose name has a NUL byte', async () => {
      await refuse('zip', rawZip([{ name: 'evil.txt\0.json', data: Buffer.from('evil') }]), {
        code: 'ARCHIVE_PATH_TRAVERSAL',
        file: 'evil.txt\\x00.json',
      });
    });
  });

  describe('refuses links', () => {
    it.each([
      ['symbolic', 'symlink' as const],
      ['hard', 'link' as const],
    ])('a %s link in a tar', async (_label, type) => {
      const testCase = await refuse(
        'tar',
        await tarBytes([file('data.txt', 'x'), { header: { name: 'link', type, linkname: '/etc/passwd' } }]),
        {
          code: 'ARCHIVE_LINK_REFUSED',
          file: 'link',
          message: /\/etc\/passwd/,
        },
      );
      expect(existsSync(join(testCase.destination, 'link'))).toBe(false);
    });

    it('a symbolic link in a zip (Unix mode 0o120000)', async () => {
      await refuse('zip', rawZip([{ name: 'link', data: Buffer.from('/etc/passwd'), unixMode: 0o120777 }]), {
        code: 'ARCHIVE_LINK_REFUSED',
        file: 'link',
      });
    });
  });

  describe('refuses special files', () => {
    it.each(['fifo' as const, 'character-device' as const, 'block-device' as const])('a tar %s', async (type) => {
      await refuse('tar', await tarBytes([{ header: { name: 'dev/thing', type } }]), {
        code: 'ARCHIVE_ENTRY_UNSUPPORTED',
        file: 'dev/thing',
      });
    });

    it('a zip FIFO (Unix mode 0o010000)', async () => {
      await refuse('zip', rawZip([{ name: 'pipe', unixMode: 0o010644 }]), { code: 'ARCHIVE_ENTRY_UNSUPPORTED', file: 'pipe' });
    });

    it('a zip entry compressed with a method other than deflate', async () => {
      await refuse('zip', rawZip([{ name: 'data.bz2', data: Buffer.from('BZh9'), method: 12 }]), {
        code: 'ARCHIVE_ENTRY_UNSUPPORTED',
        file: 'data.bz2',
        message: /method 12/,
      });
    });
  });

  describe('refuses duplicate paths', () => {
    it('the same tar file twice (as ./a.txt and a.txt)', async () => {
      await refuse('tar', await tarBytes([file('./a.txt', 'one'), file('a.txt', 'two')]), {
        code: 'ARCHIVE_DUPLICATE_PATH',
        file: 'a.txt',
      });
    });

    it('the same zip file twice', async () => {
      await refuse(
        'zip',
        rawZip([
          { name: 'a.txt', data: Buffer.from('one') },
          { name: 'a.txt', data: Buffer.from('two') },
        ]),
        { code: 'ARCHIVE_DUPLICATE_PATH', file: 'a.txt' },
      );
    });

    it('a file where a folder is needed', async () => {
      await refuse('tar', await tarBytes([file('data', 'a file'), file('data/episode.hdf5', 'x')]), {
        code: 'ARCHIVE_DUPLICATE_PATH',
        file: 'data/episode.hdf5',
      });
    });

    it('a file where a folder already is', async () => {
      await refuse(
        'zip',
        rawZip([
          { name: 'data/episode.hdf5', data: Buffer.from('x') },
          { name: 'data', data: Buffer.from('a file') },
        ]),
        { code: 'ARCHIVE_DUPLICATE_PATH', file: 'data' },
      );
    });

    it('a folder where a file already is', async () => {
      await refuse('tar', await tarBytes([file('data', 'a file'), folder('data')]), { code: 'ARCHIVE_DUPLICATE_PATH', file: 'data' });
    });
  });

  describe('refuses too many entries', () => {
    it('in a tar, at the first entry over the limit', async () => {
      await refuse(
        'tar',
        await tarBytes([file('a', '1'), file('b', '2'), file('c', '3')]),
        { code: 'ARCHIVE_TOO_MANY_FILES', file: 'c', message: /more than 2 entries/ },
        { maxFiles: 2 },
      );
    });

    it('in a zip, from its central directory before extracting anything', async () => {
      const testCase = await refuse(
        'zip',
        await folderArchive('zip'),
        { code: 'ARCHIVE_TOO_MANY_FILES', message: /limit of 3/ },
        { maxFiles: 3 },
      );
      expect(await bytesOnDisk(testCase.destination)).toBe(0);
    });
  });

  describe('refuses archives that expand too much', () => {
    const zeros = Buffer.alloc(50 * 1000 * 1000);

    it('a zip bomb (50 MB of zeros), by its compression ratio, before writing anything', async () => {
      const zip = await yazlBytes((archive) => archive.addBuffer(zeros, 'zeros.bin'));
      expect(zip.length).toBeLessThan(zeros.length / 200);
      const testCase = await refuse('zip', zip, { code: 'ARCHIVE_TOO_LARGE', file: 'zeros.bin', message: /200 times/ });
      expect(await bytesOnDisk(testCase.destination)).toBe(0);
    });

    it('a zip whose header understates the expanded size, by counting the bytes (at most the declared size written)', async () => {
      const zip = rawZip([{ name: 'liar.bin', data: zeros, method: 8, uncompressedSize: 1000 }]);
      const testCase = await refuse(
        'zip',
        zip,
        { code: 'ARCHIVE_CORRUPT', file: 'liar.bin', message: /too many bytes/ },
        { maxCompressionRatio: Infinity },
      );
      expect(await bytesOnDisk(testCase.destination)).toBeLessThanOrEqual(1000);
    });

    it('a zip whose header understates the size of an entry in a folder, as a coded refusal (yauzl inflates before the entry is read)', async () => {
      // Like the 318-byte zip of the hostile-input sweep (#19): the error came before anyone listened and ended the process.
      const lines = Array.from({ length: 14 }, (_, step) => JSON.stringify({ episode: 0, step, action: [step] })).join('\n');
      const zip = rawZip([{ name: 'upload/data.ndjson', data: Buffer.from(lines), method: 8, uncompressedSize: 10 }]);
      for (let attempt = 0; attempt < 20; attempt++) {
        await refuse('zip', zip, { code: 'ARCHIVE_CORRUPT', file: 'upload/data.ndjson', message: /too many bytes/ });
      }
    });

    it('a zip whose entries together expand beyond maxTotalExpansionRatio times its size, though each is within its own ratio', async () => {
      const zip = await yazlBytes((archive) => {
        for (let index = 0; index < 30; index++) archive.addBuffer(Buffer.alloc(MiB), `part-${index}.bin`);
      });
      const budget = 200 * zip.length;
      expect(30 * MiB).toBeGreaterThan(budget);
      const testCase = await newCase('zip', zip);
      const error = await extract('zip', testCase).catch((caught: unknown) => caught);
      expect(error).toMatchObject({
        code: 'ARCHIVE_TOO_LARGE',
        message: expect.stringMatching(/200 times its own size/),
        location: { file: expect.stringMatching(/^part-\d+\.bin$/) },
        details: { limit: 'maxTotalExpansionRatio', value: 200 },
      });
      expect(await bytesOnDisk(testCase.destination)).toBeLessThanOrEqual(budget);
      // The same zip with the budget raised extracts whole.
      const { result } = await extractBytes('zip', zip, { maxTotalExpansionRatio: 100_000 });
      expect(result.files).toHaveLength(30);
    });

    it('a zip over maxExpandedBytes, stopping at the entry that crosses it', async () => {
      const limit = 1 * MiB;
      const zip = await yazlBytes((archive) => {
        for (const name of ['a.bin', 'b.bin', 'c.bin']) archive.addBuffer(randomBytes(600 * 1024), name);
      });
      const testCase = await refuse(
        'zip',
        zip,
        { code: 'ARCHIVE_TOO_LARGE', file: 'b.bin', message: /1 MiB \(1048576 bytes\)/ },
        { maxExpandedBytes: limit },
      );
      expect(await bytesOnDisk(testCase.destination)).toBeLessThanOrEqual(limit);
    });

    it('a tar.gz over maxExpandedBytes, writing at most the limit', async () => {
      const limit = 1 * MiB;
      const tarGz = gzipSync(await tarBytes([file('small.txt', 'x'), file('random.bin', randomBytes(5 * MiB))]));
      const testCase = await refuse(
        'tar.gz',
        tarGz,
        { code: 'ARCHIVE_TOO_LARGE', file: 'random.bin', message: /1 MiB/ },
        { maxExpandedBytes: limit },
      );
      expect(await bytesOnDisk(testCase.destination)).toBeLessThanOrEqual(limit);
    });

    it('a tar.gz bomb (50 MB of zeros) with the ratio off, by maxExpandedBytes, writing at most the limit', async () => {
      const limit = 4 * MiB;
      const tarGz = gzipSync(await tarBytes([file('zeros.bin', zeros)]));
      const testCase = await refuse(
        'tar.gz',
        tarGz,
        { code: 'ARCHIVE_TOO_LARGE', file: 'zeros.bin' },
        { maxExpandedBytes: limit, maxCompressionRatio: Infinity },
      );
      expect(await bytesOnDisk(testCase.destination)).toBeLessThanOrEqual(limit);
    });

    it('a tar.gz bomb (50 MB of zeros) by its compression ratio, well before the end', async () => {
      const tarGz = gzipSync(await tarBytes([file('zeros.bin', zeros)]));
      const testCase = await refuse('tar.gz', tarGz, { code: 'ARCHIVE_TOO_LARGE', file: 'zeros.bin', message: /200 times/ });
      // The ratio is judged on compressed bytes read so far, which run at most one read ahead.
      expect(await bytesOnDisk(testCase.destination)).toBeLessThanOrEqual(200 * (tarGz.length + oneChunk));
      expect(await bytesOnDisk(testCase.destination)).toBeLessThan(zeros.length / 2);
    });

    it('a tar.gz whose pax header would have to be held in memory whole', async () => {
      const paxBytes = 80 * MiB;
      const testCase = await newCase('tar.gz', Buffer.alloc(0));
      async function* hostileTar(): AsyncGenerator<Buffer> {
        yield ustarHeader('PaxHeaders/evil', paxBytes, 'x');
        const block = Buffer.alloc(MiB, 0x41);
        for (let written = 0; written < paxBytes; written += block.length) yield block;
      }
      await pipeline(Readable.from(hostileTar()), createGzip(), createWriteStream(testCase.archive));
      await expectRefusal(extract('tar.gz', testCase), testCase, { code: 'ARCHIVE_ENTRY_UNSUPPORTED', message: /pax/ });
    });
  });

  describe('refuses zip entries that share bytes, before writing anything', () => {
    it('250 entries pointing at one 4 MiB entry', async () => {
      const data = Buffer.alloc(4 * MiB, 'robot ');
      const names = Array.from({ length: 249 }, (_, index) => `copy-${index}.bin`);
      const zip = overlappingZip(data, names, 'shared');
      expect(zip.length).toBeLessThan(116 * 1024);
      const testCase = await refuse('zip', zip, {
        code: 'ARCHIVE_OVERLAPPING_ENTRIES',
        file: 'copy-0.bin',
        message: /inside the bytes of entry "first\.bin"/,
      });
      expect(await bytesOnDisk(testCase.destination)).toBe(0);
    });

    it("an entry whose local header lies inside the previous entry's data", async () => {
      const zip = overlappingZip(randomBytes(2000), ['inner.bin', 'innermost.bin'], 'nested');
      const testCase = await refuse('zip', zip, { code: 'ARCHIVE_OVERLAPPING_ENTRIES', file: 'inner.bin', message: /first\.bin/ });
      expect(await bytesOnDisk(testCase.destination)).toBe(0);
    });
  });

  describe('refuses damaged archives as ARCHIVE_CORRUPT', () => {
    it('a truncated tar.gz', async () => {
      const tarGz = gzipSync(await tarBytes([file('random.bin', randomBytes(200 * 1024))]));
      await refuse('tar.gz', tarGz.subarray(0, tarGz.length / 2), { code: 'ARCHIVE_CORRUPT', message: /gzip/ });
    });

    it('a tar cut in the middle of an entry', async () => {
      const tar = await tarBytes([file('random.bin', randomBytes(200 * 1024))]);
      await refuse('tar', tar.subarray(0, 100 * 1024), { code: 'ARCHIVE_CORRUPT', file: 'random.bin', message: /Unexpected end of data/ });
    });

    it('a truncated zip', async () => {
      const zip = await folderArchive('zip');
      await refuse('zip', zip.subarray(0, zip.length - 40), { code: 'ARCHIVE_CORRUPT', message: /central directory/ });
    });

    it('a zip entry whose data does not match its CRC-32', async () => {
      await refuse('zip', rawZip([{ name: 'data.bin', data: Buffer.from('some data'), crc: 0x12345678 }]), {
        code: 'ARCHIVE_CORRUPT',
        file: 'data.bin',
        message: /CRC-32/,
      });
    });

    it.each([
      ['tar', randomBytes(4096)],
      ['tar.gz', Buffer.concat([Buffer.from([0x1f, 0x8b]), randomBytes(4094)])],
      ['zip', Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), randomBytes(4092)])],
    ] as const)('garbage bytes as a %s', async (kind, bytes) => {
      await refuse(kind, bytes, { code: 'ARCHIVE_CORRUPT' });
    });

    it('a gzip stream that does not hold a tar', async () => {
      await refuse('tar.gz', gzipSync(Buffer.from('{"not":"a tar"}')), { code: 'ARCHIVE_CORRUPT' });
      await refuse('tar.gz', gzipSync(Buffer.from('x'.repeat(2000))), { code: 'ARCHIVE_CORRUPT' });
    });
  });

  describe('refuses archives without files as ARCHIVE_EMPTY', () => {
    it.each([
      ['an empty zip', 'zip' as const, () => yazlBytes(() => undefined)],
      ['a tar of folders only', 'tar' as const, () => tarBytes([folder('a'), folder('a/b')])],
      ['an empty tar.gz', 'tar.gz' as const, async () => gzipSync(await tarBytes([]))],
      ['a zip of macOS metadata only', 'zip' as const, () => yazlBytes((zip) => zip.addBuffer(Buffer.from('x'), '__MACOSX/._a'))],
    ])('%s', async (_label, kind, build) => {
      await refuse(kind, await build(), { code: 'ARCHIVE_EMPTY' });
    });
  });

  it('stops when its signal is aborted', async () => {
    const testCase = await newCase('tar', await folderArchive('tar'));
    const controller = new AbortController();
    controller.abort(new Error('upload cancelled'));
    await expect(
      extractArchive({ file: testCase.archive, kind: 'tar', destination: testCase.destination, signal: controller.signal }),
    ).rejects.toThrow('upload cancelled');
  });

  it('needs an empty destination (the only way to be sure no folder in it is a symlink)', async () => {
    const testCase = await newCase('tar', await folderArchive('tar'));
    await mkdir(testCase.destination);
    await writeFile(join(testCase.destination, 'left-over'), 'x');
    await expect(extract('tar', testCase)).rejects.toThrow(/empty destination/);
  });

  it('rethrows file-system failures as they are', async () => {
    const testCase = await newCase('zip', Buffer.alloc(0));
    await rm(testCase.archive);
    await expect(extract('zip', testCase)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
