import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, createGunzip } from 'node:zlib';
import { ImportError } from '@kura/formats';
import tarStream, { type Entry as TarEntry } from 'tar-stream';
import yauzl, { type Entry as ZipEntry, type ZipFile } from 'yauzl';

/** The archive formats an upload may come in. */
export type ArchiveKind = 'tar' | 'tar.gz' | 'zip';

/** How much an archive may hold; anything beyond is refused with ARCHIVE_TOO_LARGE or ARCHIVE_TOO_MANY_FILES. */
export interface ArchiveLimits {
  /** Most bytes the archive's files may add up to once extracted. Counted on the bytes actually written, never taken from headers. */
  maxExpandedBytes: number;
  /**
   * Most the whole archive may expand relative to its own size in bytes, all entries together: the
   * budget per-entry ratios cannot give (many entries, each within its ratio). Not checked below 1 MiB
   * expanded. `Infinity` turns the check off.
   */
  maxTotalExpansionRatio?: number;
  /** Most entries the archive may hold: files, folders and skipped macOS metadata alike (each costs work). */
  maxFiles: number;
  /**
   * Most a zip entry may expand relative to its compressed size, and a tar.gz as a whole (a gzip stream is
   * one piece) relative to the compressed bytes read so far. Not checked below 1 MiB expanded, where
   * small, very repetitive files are harmless. `Infinity` turns the check off.
   */
  maxCompressionRatio?: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Limits used for whatever `extractArchive` is not told. */
export const defaultArchiveLimits: Readonly<Required<ArchiveLimits>> = Object.freeze({
  maxExpandedBytes: 200 * GiB,
  maxTotalExpansionRatio: 200,
  maxFiles: 1_000_000,
  maxCompressionRatio: 200,
});

/** Below this many expanded bytes neither the compression ratio nor the total expansion is checked. */
const ratioFreeBytes = 1 * MiB;

/**
 * tar-stream holds pax and GNU long-name headers whole in memory before it emits their entry; a hostile
 * header declaring gigabytes would exhaust memory. Real ones are a few KiB (paths, extended attributes).
 */
const maxTarBytesWithoutProgress = 64 * MiB;

/** Longest entry path accepted (Linux PATH_MAX); longer ones could not be written anyway. */
const maxPathBytes = 4096;

/** One regular file written by `extractArchive`. */
export interface ExtractedFile {
  /** Path inside the archive (and inside the destination), `/`-separated, no leading slash: `meta/info.json`. */
  path: string;
  /** Bytes written. */
  bytes: number;
}

/** What `extractArchive` needs. */
export interface ExtractArchiveParams {
  /** The archive on local disk. */
  file: string;
  kind: ArchiveKind;
  /** An empty (or not yet existing) folder to extract into; it is created if needed. */
  destination: string;
  /** Overrides of `defaultArchiveLimits`. */
  limits?: Partial<ArchiveLimits>;
  /** Stops extraction; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Says which kind of archive a file is from its first bytes (pass at least 512 when the file has them,
 * since tar's `ustar` magic sits at offset 257). A gzip stream is taken for a tar.gz: extraction refuses
 * it with ARCHIVE_CORRUPT if it does not hold a tar. Returns undefined for anything else.
 */
export function detectArchiveKind(head: Uint8Array): ArchiveKind | undefined {
  if (hasBytesAt(head, 0, [0x1f, 0x8b])) return 'tar.gz';
  // A local file header, or the end-of-central-directory record of an empty zip.
  if (hasBytesAt(head, 0, [0x50, 0x4b, 0x03, 0x04]) || hasBytesAt(head, 0, [0x50, 0x4b, 0x05, 0x06])) return 'zip';
  // "ustar": POSIX ustar, pax and GNU tar all carry it.
  if (hasBytesAt(head, 257, [0x75, 0x73, 0x74, 0x61, 0x72])) return 'tar';
  return undefined;
}

/**
 * Extracts an uploaded archive into `destination`, streaming: memory does not grow with entry sizes.
 *
 * Writes regular files and folders only, never outside `destination`, with default permissions (modes,
 * owners and times in the archive are ignored). Backslashes in entry names are taken as folder
 * separators (older Windows zip tools write them). macOS metadata is skipped silently: the `__MACOSX/`
 * folder, `.DS_Store` files and AppleDouble `._*` files (importers would mistake `._episode_0.hdf5` for
 * an episode).
 *
 * Throws ImportError, with the offending entry's name (as the archive spells it) in `location.file`:
 * ARCHIVE_PATH_TRAVERSAL (absolute path, `..` segment, drive letter, NUL byte), ARCHIVE_LINK_REFUSED
 * (symbolic or hard link), ARCHIVE_ENTRY_UNSUPPORTED (device, FIFO, encrypted or oddly compressed zip
 * entry, oversized tar metadata), ARCHIVE_TOO_LARGE (over `maxExpandedBytes`, `maxTotalExpansionRatio` or the
 * compression ratio; `details.limit` names which), ARCHIVE_OVERLAPPING_ENTRIES (zip entries sharing bytes,
 * checked before anything is written), ARCHIVE_TOO_MANY_FILES, ARCHIVE_DUPLICATE_PATH (a path twice, or a
 * file where a folder is needed),
 * ARCHIVE_CORRUPT (truncated or damaged tar, gzip or zip), ARCHIVE_EMPTY (no regular file).
 * File-system failures (disk full, archive missing) are rethrown as they are.
 *
 * On failure the destination may hold part of the archive: the caller deletes it.
 */
export async function extractArchive(params: ExtractArchiveParams): Promise<{ files: ExtractedFile[] }> {
  const { file, kind, signal } = params;
  signal?.throwIfAborted();
  const destination = resolve(params.destination);
  await mkdir(destination, { recursive: true });
  // "Never outside the destination" relies on every folder in it having been made by us (no symlinks).
  if ((await readdir(destination)).length > 0) {
    throw new Error(`extractArchive needs an empty destination folder, and ${destination} is not empty`);
  }

  const { size: archiveBytes } = await stat(file);
  const extraction = new Extraction(destination, resolveLimits(params.limits), archiveBytes, signal);
  try {
    switch (kind) {
      case 'tar':
        await extractTar(extraction, file, false);
        break;
      case 'tar.gz':
        await extractTar(extraction, file, true);
        break;
      case 'zip':
        await extractZip(extraction, file);
        break;
    }
  } catch (error) {
    throw extraction.explain(error, kind);
  }
  if (extraction.files.length === 0) {
    throw new ImportError('ARCHIVE_EMPTY', 'the archive holds no files (only folders or macOS metadata, if anything)');
  }
  return { files: extraction.files };
}

function resolveLimits(limits: Partial<ArchiveLimits> | undefined): Required<ArchiveLimits> {
  return {
    maxExpandedBytes: limits?.maxExpandedBytes ?? defaultArchiveLimits.maxExpandedBytes,
    maxTotalExpansionRatio: limits?.maxTotalExpansionRatio ?? defaultArchiveLimits.maxTotalExpansionRatio,
    maxFiles: limits?.maxFiles ?? defaultArchiveLimits.maxFiles,
    maxCompressionRatio: limits?.maxCompressionRatio ?? defaultArchiveLimits.maxCompressionRatio,
  };
}

async function extractTar(extraction: Extraction, file: string, gzipped: boolean): Promise<void> {
  const input = createReadStream(file);
  const gunzip = gzipped ? createGunzip() : undefined;
  const guard = new StallGuard();
  const parser = tarStream.extract();

  // Every upstream failure ends the parser, so the entry loop below sees it.
  const fail = (error: Error): void => {
    parser.destroy(error);
  };
  input.on('error', fail);
  gunzip?.on('error', (error) => fail(new Error(`gzip: ${error.message}`)));
  guard.on('error', fail);
  const onAbort = (): void => fail(new Error('aborted'));
  extraction.signal?.addEventListener('abort', onAbort);
  (gunzip === undefined ? input : input.pipe(gunzip)).pipe(guard).pipe(parser);

  const ratio = extraction.limits.maxCompressionRatio;
  // A gzip stream cannot be judged entry by entry: compare everything expanded with what was read.
  const checkRatio =
    gunzip === undefined
      ? undefined
      : (): void => {
          const expanded = extraction.expandedBytes;
          if (expanded > ratioFreeBytes && expanded > ratio * input.bytesRead) {
            throw extraction.refuse(
              'ARCHIVE_TOO_LARGE',
              `the tar.gz expands more than ${ratio} times its compressed size (a decompression bomb?); refused at this entry`,
            );
          }
        };

  try {
    for await (const entry of parser) {
      guard.progress();
      await extraction.tarEntry(entry, () => {
        guard.progress();
        checkRatio?.();
      });
    }
  } finally {
    extraction.signal?.removeEventListener('abort', onAbort);
    input.destroy();
    gunzip?.destroy();
    parser.destroy();
  }
}

async function extractZip(extraction: Extraction, file: string): Promise<void> {
  await refuseOverlappingZipEntries(extraction, file);
  const zip = await openZip(file);
  try {
    for await (const entry of zip.eachEntry()) {
      await extraction.zipEntry(zip, entry);
    }
  } finally {
    zip.close();
  }
}

function openZip(file: string): Promise<ZipFile> {
  // Names are decoded and checked here (decodeStrings: false) so refusals carry our codes; yauzl still
  // checks that entries yield exactly their declared sizes (validateEntrySizes).
  return yauzl.openPromise(file, {
    lazyEntries: true,
    autoClose: false,
    decodeStrings: false,
    validateEntrySizes: true,
    strictFileNames: true,
  });
}

function zipEntryName(entry: ZipEntry): string {
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
}

/**
 * Reads the whole central directory and every local header before anything is written, and refuses
 * two entries whose bytes overlap: a zip can point many entries at one compressed stream, so each
 * passes its own ratio check while the archive expands without bound ("overlapping" zip bombs).
 */
async function refuseOverlappingZipEntries(extraction: Extraction, file: string): Promise<void> {
  const zip = await openZip(file);
  // Where each entry's local header starts and where its data ends, by central-directory position.
  const starts: number[] = [];
  const ends: number[] = [];
  try {
    if (zip.entryCount > extraction.limits.maxFiles) {
      throw new ImportError(
        'ARCHIVE_TOO_MANY_FILES',
        `the zip has ${zip.entryCount} entries, more than the limit of ${extraction.limits.maxFiles}`,
      );
    }
    for await (const entry of zip.eachEntry()) {
      extraction.locate(zipEntryName(entry));
      const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
      starts.push(entry.relativeOffsetOfLocalHeader);
      ends.push(fileDataStart + entry.compressedSize);
    }
  } finally {
    zip.close();
  }
  extraction.locate(undefined);

  const byStart = starts.map((_, index) => index).sort((a, b) => (starts[a] ?? 0) - (starts[b] ?? 0) || a - b);
  // The entry reaching furthest so far: any later start before its end is an overlap.
  let furthest = byStart[0];
  for (const index of byStart.slice(1)) {
    if (furthest === undefined) break;
    const start = starts[index] ?? 0;
    const furthestEnd = ends[furthest] ?? 0;
    if (start < furthestEnd) {
      const [name, otherName] = await zipEntryNames(file, [index, furthest]);
      extraction.locate(name);
      throw extraction.refuse(
        'ARCHIVE_OVERLAPPING_ENTRIES',
        `the zip entry starts at byte ${start}, inside the bytes of entry "${printable(otherName ?? '')}" ` +
          `(${starts[furthest] ?? 0}–${furthestEnd}); entries sharing data are refused because they let a small zip expand without bound`,
      );
    }
    if ((ends[index] ?? 0) > furthestEnd) furthest = index;
  }
}

/** The names of the entries at these central-directory positions (an error path: the zip is read again). */
async function zipEntryNames(file: string, positions: number[]): Promise<Array<string | undefined>> {
  const names = new Map<number, string>();
  const zip = await openZip(file);
  try {
    let position = 0;
    for await (const entry of zip.eachEntry()) {
      if (positions.includes(position)) names.set(position, zipEntryName(entry));
      if (names.size === positions.length) break;
      position += 1;
    }
  } finally {
    zip.close();
  }
  return positions.map((position) => names.get(position));
}

/** Bits of a zip entry's Unix mode (upper half of its external attributes) that give the file type. */
const unixFileType = { mask: 0o170000, regular: 0o100000, directory: 0o040000, symlink: 0o120000 } as const;

interface EntryName {
  /** Normalised: `/`-separated, no empty, `.` or `..` segments; '' for the destination itself. */
  path: string;
  /** Whether the name ended with a slash (how zip marks folders). */
  endsWithSlash: boolean;
}

/** The state of one extraction: what was written, what was counted, where we are. */
class Extraction {
  readonly files: ExtractedFile[] = [];
  expandedBytes = 0;
  private entryCount = 0;
  /** The name of the entry being read, printable, for error locations. */
  private currentEntry: string | undefined;
  private readonly filePaths = new Set<string>();
  private readonly directoryPaths = new Set<string>();
  /** The most bytes this archive may expand to, and the limit that sets it. */
  private readonly budget: { bytes: number; limit: 'maxExpandedBytes' | 'maxTotalExpansionRatio' };

  constructor(
    readonly destination: string,
    readonly limits: Required<ArchiveLimits>,
    private readonly archiveBytes: number,
    readonly signal: AbortSignal | undefined,
  ) {
    const ratio = limits.maxTotalExpansionRatio;
    const byRatio = ratio === Infinity ? Infinity : Math.max(ratioFreeBytes, ratio * archiveBytes);
    this.budget =
      byRatio < limits.maxExpandedBytes
        ? { bytes: byRatio, limit: 'maxTotalExpansionRatio' }
        : { bytes: limits.maxExpandedBytes, limit: 'maxExpandedBytes' };
  }

  /** Names the entry that errors from here on are about (undefined: the archive as a whole). */
  locate(rawName: string | undefined): void {
    this.currentEntry = rawName === undefined ? undefined : printable(rawName);
  }

  async tarEntry(entry: TarEntry, onChunk: () => void): Promise<void> {
    const { header } = entry;
    const name = this.beginEntry(header.name);
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
      case undefined: // tar-stream always sets it; an absent type is a plain file in tar
        if (isMacMetadata(name.path)) await this.skip(entry, onChunk);
        else await this.writeFile(name.path, entry, onChunk);
        return;
      case 'directory':
        // tar-stream gives folders no data: nothing to drain.
        await this.addDirectory(name.path);
        return;
      case 'link':
      case 'symlink':
        throw this.refuse(
          'ARCHIVE_LINK_REFUSED',
          `the archive entry is a ${header.type === 'link' ? 'hard' : 'symbolic'} link (to "${printable(header.linkname ?? '')}"); links are refused because they can point outside the upload`,
        );
      case 'character-device':
      case 'block-device':
      case 'fifo':
        throw this.refuse(
          'ARCHIVE_ENTRY_UNSUPPORTED',
          `the archive entry is a ${header.type.replace('-', ' ')}; only regular files and folders can be uploaded`,
        );
      case 'pax-header':
      case 'pax-global-header':
      case 'gnu-long-path':
      case 'gnu-long-link-path':
      case null:
        throw this.refuse(
          'ARCHIVE_ENTRY_UNSUPPORTED',
          'the archive entry has a tar type Kura does not read (GNU sparse file, volume label…); only regular files and folders can be uploaded',
        );
    }
  }

  async zipEntry(zip: ZipFile, entry: ZipEntry): Promise<void> {
    const name = this.beginEntry(zipEntryName(entry));
    const fileType = (entry.externalFileAttributes >>> 16) & unixFileType.mask;
    if (fileType === unixFileType.symlink) {
      throw this.refuse(
        'ARCHIVE_LINK_REFUSED',
        'the zip entry is a symbolic link; links are refused because they can point outside the upload',
      );
    }
    // Zero: no Unix mode recorded (zips made on Windows); the name says whether it is a folder.
    if (fileType !== 0 && fileType !== unixFileType.regular && fileType !== unixFileType.directory) {
      throw this.refuse(
        'ARCHIVE_ENTRY_UNSUPPORTED',
        `the zip entry is a special file (Unix type 0o${fileType.toString(8)}); only regular files and folders can be uploaded`,
      );
    }
    if (name.endsWithSlash || fileType === unixFileType.directory) {
      await this.addDirectory(name.path);
      return;
    }
    if (isMacMetadata(name.path)) return;
    if (entry.isEncrypted()) throw this.refuse('ARCHIVE_ENTRY_UNSUPPORTED', 'the zip entry is encrypted; upload it unencrypted');
    if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
      throw this.refuse(
        'ARCHIVE_ENTRY_UNSUPPORTED',
        `the zip entry uses compression method ${entry.compressionMethod}; only stored and deflated entries can be read, so re-create the zip with deflate`,
      );
    }

    // Declared sizes may lie, so they are only used to refuse early; the counts below decide.
    const ratio = this.limits.maxCompressionRatio;
    const allowedBytes = ratio === Infinity ? Infinity : Math.max(ratioFreeBytes, ratio * entry.compressedSize);
    if (entry.uncompressedSize > allowedBytes) {
      throw this.tooCompressed(ratio, entry.compressedSize, entry.uncompressedSize);
    }
    if (this.expandedBytes + entry.uncompressedSize > this.budget.bytes) throw this.tooLarge();

    // Folders are made before the entry is opened: yauzl inflates as soon as it is, and an error then
    // (more bytes than the header says) must find a listener rather than end the process.
    const target = await this.reserveFile(name.path);
    const stream = await zip.openReadStreamPromise(entry);
    stream.on('error', ignoreHere);
    let crc = 0;
    let entryBytes = 0;
    try {
      await this.writeReserved(target, stream, (chunk) => {
        entryBytes += chunk.byteLength;
        if (entryBytes > allowedBytes) throw this.tooCompressed(ratio, entry.compressedSize, entryBytes);
        crc = crc32(chunk, crc);
      });
    } finally {
      stream.destroy();
    }
    // yauzl does not check CRC-32; a damaged stored entry would otherwise pass unnoticed.
    if (crc !== entry.crc32) {
      throw this.refuse(
        'ARCHIVE_CORRUPT',
        `the zip entry's data does not match its CRC-32 (0x${hex(crc)} instead of 0x${hex(entry.crc32)}); the zip is damaged`,
      );
    }
  }

  /** Maps any failure to what the caller should see: our refusals, ARCHIVE_CORRUPT, or the error as is. */
  explain(error: unknown, kind: ArchiveKind): unknown {
    if (this.signal?.aborted === true) return this.signal.reason;
    if (error instanceof ImportError) return error;
    if (isSystemError(error)) {
      // Only reachable on case-insensitive file systems, where `A.txt` and `a.txt` collide.
      if (error.code === 'EEXIST' || error.code === 'ENOTDIR' || error.code === 'EISDIR') {
        return this.refuse('ARCHIVE_DUPLICATE_PATH', `the archive entry collides with another one on disk (${error.code})`);
      }
      if (error.code === 'ENAMETOOLONG')
        return this.refuse('ARCHIVE_ENTRY_UNSUPPORTED', 'the archive entry has a name too long for the file system');
      return error;
    }
    if (errorName(error) === 'AbortError') return error;
    // What remains comes from the parsers: tar-stream, zlib, yauzl.
    const message = errorMessage(error);
    return this.refuse(
      'ARCHIVE_CORRUPT',
      `the ${kind} archive is truncated or damaged${this.currentEntry === undefined ? '' : ' (at this entry)'}: ${message}`,
    );
  }

  refuse(code: string, message: string): ImportError {
    return new ImportError(code, message, this.currentEntry === undefined ? {} : { file: this.currentEntry });
  }

  private tooLarge(): ImportError {
    const { bytes, limit } = this.budget;
    const message =
      limit === 'maxExpandedBytes'
        ? `the archive expands to more than ${formatBytes(bytes)} (${bytes} bytes), the limit for one upload`
        : `the archive expands to more than ${this.limits.maxTotalExpansionRatio} times its own size of ${this.archiveBytes} bytes ` +
          `(${formatBytes(bytes)}), the limit for one archive; refused at this entry`;
    const value = limit === 'maxExpandedBytes' ? bytes : this.limits.maxTotalExpansionRatio;
    return new ImportError('ARCHIVE_TOO_LARGE', message, this.currentEntry === undefined ? {} : { file: this.currentEntry }, {
      limit,
      value,
    });
  }

  private tooCompressed(ratio: number, compressedBytes: number, expandedBytes: number): ImportError {
    return this.refuse(
      'ARCHIVE_TOO_LARGE',
      `the zip entry expands from ${compressedBytes} to ${expandedBytes} bytes or more, beyond the limit of ${ratio} times (a zip bomb?)`,
    );
  }

  /** Counts an entry against `maxFiles` and checks its name. */
  private beginEntry(rawName: string): EntryName {
    this.signal?.throwIfAborted();
    this.currentEntry = printable(rawName);
    this.entryCount += 1;
    if (this.entryCount > this.limits.maxFiles) {
      throw this.refuse('ARCHIVE_TOO_MANY_FILES', `the archive has more than ${this.limits.maxFiles} entries, the limit for one upload`);
    }
    return this.checkName(rawName);
  }

  private checkName(rawName: string): EntryName {
    const traversal = (why: string): ImportError =>
      this.refuse('ARCHIVE_PATH_TRAVERSAL', `the archive entry's name ${why}; refused because it could write outside the upload's folder`);
    if (rawName.includes('\0')) throw traversal('contains a NUL byte');
    if (Buffer.byteLength(rawName) > maxPathBytes) {
      throw this.refuse('ARCHIVE_ENTRY_UNSUPPORTED', `the archive entry's name is longer than ${maxPathBytes} bytes`);
    }
    const name = rawName.replaceAll('\\', '/');
    if (name.startsWith('/')) throw traversal('is an absolute path');
    if (/^[A-Za-z]:/.test(name)) throw traversal('starts with a Windows drive letter');
    const segments = name.split('/');
    if (segments.includes('..')) throw traversal('has a ".." segment');
    const path = segments.filter((segment) => segment !== '' && segment !== '.').join('/');
    // Belt and braces: the checks above should make this impossible.
    if (path !== '' && !resolve(this.destination, path).startsWith(this.destination + sep))
      throw traversal('resolves outside the destination');
    return { path, endsWithSlash: name.endsWith('/') };
  }

  private async addDirectory(path: string): Promise<void> {
    if (path === '' || isMacMetadata(path)) return;
    if (this.filePaths.has(path)) throw this.refuse('ARCHIVE_DUPLICATE_PATH', `the archive has both a file and a folder named "${path}"`);
    await this.makeDirectory(path);
  }

  private async makeDirectory(path: string): Promise<void> {
    if (this.directoryPaths.has(path)) return;
    const segments = path.split('/');
    const prefixes = segments.map((_, index) => segments.slice(0, index + 1).join('/'));
    const blocking = prefixes.find((prefix) => this.filePaths.has(prefix));
    if (blocking !== undefined)
      throw this.refuse('ARCHIVE_DUPLICATE_PATH', `the archive entry needs "${blocking}" to be a folder, but the archive has a file there`);
    await mkdir(join(this.destination, ...segments), { recursive: true });
    for (const prefix of prefixes) this.directoryPaths.add(prefix);
  }

  /** Writes one entry's bytes, counting them; `onChunk` may throw to stop (ratio checks). */
  private async writeFile(path: string, chunks: AsyncIterable<Uint8Array>, onChunk: (chunk: Uint8Array) => void): Promise<void> {
    await this.writeReserved(await this.reserveFile(path), chunks, onChunk);
  }

  /** Checks that a file may be written at `path` and makes its folders. */
  private async reserveFile(path: string): Promise<{ path: string; segments: string[] }> {
    if (path === '') throw this.refuse('ARCHIVE_PATH_TRAVERSAL', "the archive entry is a file whose name is the upload's folder itself");
    if (this.filePaths.has(path)) throw this.refuse('ARCHIVE_DUPLICATE_PATH', `the archive has "${path}" twice`);
    if (this.directoryPaths.has(path))
      throw this.refuse('ARCHIVE_DUPLICATE_PATH', `the archive has both a file and a folder named "${path}"`);
    const segments = path.split('/');
    if (segments.length > 1) await this.makeDirectory(segments.slice(0, -1).join('/'));
    this.filePaths.add(path);
    return { path, segments };
  }

  private async writeReserved(
    { path, segments }: { path: string; segments: string[] },
    chunks: AsyncIterable<Uint8Array>,
    onChunk: (chunk: Uint8Array) => void,
  ): Promise<void> {
    let bytes = 0;
    const counted = this.metered(chunks, (chunk) => {
      bytes += chunk.byteLength;
      onChunk(chunk);
    });
    // 'wx': never reuse an existing path, and never follow a symlink at the last component.
    await pipeline(
      counted,
      createWriteStream(join(this.destination, ...segments), { flags: 'wx' }),
      this.signal === undefined ? {} : { signal: this.signal },
    );
    this.files.push({ path, bytes });
  }

  /** Reads a skipped entry to its end: the tar parser needs it consumed, and its bytes still count. */
  private async skip(chunks: AsyncIterable<Uint8Array>, onChunk: (chunk: Uint8Array) => void): Promise<void> {
    for await (const chunk of this.metered(chunks, onChunk)) void chunk;
  }

  /** Passes chunks on, counting each against the archive's expansion budget before it is written. */
  private async *metered(chunks: AsyncIterable<Uint8Array>, onChunk: (chunk: Uint8Array) => void): AsyncGenerator<Uint8Array> {
    for await (const chunk of chunks) {
      this.expandedBytes += chunk.byteLength;
      if (this.expandedBytes > this.budget.bytes) throw this.tooLarge();
      onChunk(chunk);
      yield chunk;
    }
  }
}

/** Passes tar bytes to the parser, refusing when too many go in without an entry or entry data coming out. */
class StallGuard extends Transform {
  private bytesSinceProgress = 0;

  progress(): void {
    this.bytesSinceProgress = 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytesSinceProgress += chunk.byteLength;
    if (this.bytesSinceProgress > maxTarBytesWithoutProgress) {
      callback(
        new ImportError(
          'ARCHIVE_ENTRY_UNSUPPORTED',
          `the tar has a metadata header (pax or GNU long name) larger than ${formatBytes(maxTarBytesWithoutProgress)}`,
        ),
      );
      return;
    }
    callback(null, chunk);
  }
}

/** A listener that only keeps an early stream error from being unhandled; the stream's reader still gets it. */
function ignoreHere(): void {}

function isMacMetadata(path: string): boolean {
  const segments = path.split('/');
  const baseName = segments.at(-1) ?? '';
  return segments[0] === '__MACOSX' || baseName === '.DS_Store' || baseName.startsWith('._');
}

function hasBytesAt(head: Uint8Array, offset: number, expected: readonly number[]): boolean {
  return head.length >= offset + expected.length && expected.every((byte, index) => head[offset + index] === byte);
}

// By shape, not instanceof: errors made by Node internals may come from another realm (jest's vm modules).
function isSystemError(error: unknown): error is { code: string; syscall: string } {
  return (
    typeof error === 'object' &&
    error !== null &&
    'syscall' in error &&
    typeof error.syscall === 'string' &&
    'code' in error &&
    typeof error.code === 'string'
  );
}

function errorName(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'name' in error && typeof error.name === 'string' ? error.name : undefined;
}

function errorMessage(error: unknown): string {
  return typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string'
    ? error.message
    : String(error);
}

/** An entry name fit for messages and database rows: control characters escaped (Postgres text refuses NUL), long names cut. */
function printable(name: string): string {
  const escaped = Array.from(name, (character) => {
    const code = character.codePointAt(0) ?? 0;
    return code < 0x20 || code === 0x7f ? `\\x${code.toString(16).padStart(2, '0')}` : character;
  }).join('');
  return escaped.length > 1024 ? `${escaped.slice(0, 1024)}…` : escaped;
}

function hex(value: number): string {
  return value.toString(16).padStart(8, '0');
}

function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'] as const;
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit] ?? 'bytes'}`;
}
