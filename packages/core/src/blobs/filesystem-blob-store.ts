import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, type Dirent } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import {
  assertValidBlobKey,
  assertValidPartNumber,
  BlobNotFoundError,
  InvalidBlobKeyError,
  MIN_MULTIPART_PART_BYTES,
  resolveByteRange,
  sortCompletedParts,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  type CompletedPart,
  type LocalFileListener,
} from './blob-store.js';
import { writeChunksFully } from '@kura/formats';
import { byteStream, chunksOf, chunkToBuffer } from './stream-chunks.js';

/** Folders of the store's own bookkeeping, at its root; keys may not start with them. */
const TEMPORARY_FOLDER = '.tmp';
const MULTIPART_FOLDER = '.multipart';
const RESERVED_FIRST_SEGMENTS = new Set([TEMPORARY_FOLDER, MULTIPART_FOLDER]);

/** Holds the key of a multipart upload inside its folder; part files are named by number. */
const UPLOAD_KEY_FILE = 'key';
const UPLOAD_ID_PATTERN = /^[0-9a-f]{32}$/;

/**
 * BlobStore on a local folder (embedded mode): a blob is the file `<directory>/<key>`.
 *
 * Writes go to a temporary file under `<directory>/.tmp/`, are fsynced and then renamed into
 * place, so readers never see a partial blob and a crashed write leaves only a temporary file.
 * Multipart parts live in `<directory>/.multipart/<uploadId>/<partNumber>` until completion.
 *
 * Unlike S3, a key cannot be both a blob and a folder of other keys (`a` and `a/b`), keys may not
 * start with `.tmp/` or `.multipart/`, and `contentType` is not kept.
 */
const READ_CHUNK_BYTES = 1024 * 1024;

export class FilesystemBlobStore implements BlobStore {
  readonly kind = 'filesystem';
  private readonly directory: string;
  private readonly temporaryDirectory: string;
  private readonly multipartDirectory: string;

  constructor(params: { directory: string }) {
    this.directory = resolve(params.directory);
    this.temporaryDirectory = join(this.directory, TEMPORARY_FOLDER);
    this.multipartDirectory = join(this.directory, MULTIPART_FOLDER);
  }

  async put(params: {
    key: string;
    body: Readable | Buffer;
    contentType?: string;
    onLocalFile?: LocalFileListener;
  }): Promise<{ bytes: number }> {
    const path = this.blobPath(params.key);
    const written = await this.writeTemporaryFile({
      chunks: chunksOf(params.body),
      ...(params.onLocalFile ? { onFile: params.onLocalFile } : {}),
    });
    await this.moveIntoPlace({ temporaryPath: written.path, path, key: params.key });
    return { bytes: written.bytes };
  }

  async localPath(params: { key: string }): Promise<string | undefined> {
    const path = this.blobPath(params.key);
    return (await this.head(params)) ? path : undefined;
  }

  async adoptFile(params: { key: string; path: string }): Promise<{ bytes: number }> {
    const path = this.blobPath(params.key);
    const { size } = await stat(params.path);
    const handle = await open(params.path, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await mkdir(this.directory, { recursive: true });
    if ((await stat(params.path)).dev !== (await stat(this.directory)).dev) {
      // Another filesystem: a rename cannot work, so copy.
      return this.put({ key: params.key, body: createReadStream(params.path) }).finally(() => rm(params.path, { force: true }));
    }
    await this.moveIntoPlace({ temporaryPath: params.path, path, key: params.key });
    return { bytes: size };
  }

  async get(params: { key: string; range?: ByteRange }): Promise<Readable> {
    const path = this.blobPath(params.key);
    // Reading through one open handle keeps serving the version that was opened even when a put
    // renames a new version into place meanwhile.
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isMissingPathError(error)) throw new BlobNotFoundError(params.key);
      throw error;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new BlobNotFoundError(params.key);
      // 1 MiB reads: shards and downloads are read in long runs, and 64 KiB chunks cost syscalls.
      if (params.range === undefined) return handle.createReadStream({ highWaterMark: READ_CHUNK_BYTES });
      const span = resolveByteRange({ key: params.key, range: params.range, size: info.size });
      if (span === undefined) {
        await handle.close();
        return byteStream([]);
      }
      return handle.createReadStream({ start: span.start, end: span.end, highWaterMark: READ_CHUNK_BYTES });
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async head(params: { key: string }): Promise<BlobInfo | undefined> {
    const path = this.blobPath(params.key);
    try {
      const info = await stat(path);
      // A Date of this realm: fs builds its Dates in Node's own, which jest's VM does not recognise.
      return info.isFile() ? { key: params.key, bytes: info.size, lastModified: new Date(info.mtimeMs) } : undefined;
    } catch (error) {
      if (isMissingPathError(error)) return undefined;
      throw error;
    }
  }

  async delete(params: { key: string }): Promise<void> {
    const path = this.blobPath(params.key);
    try {
      await unlink(path);
    } catch (error) {
      // EISDIR: the key names a folder of other keys, so there is no blob to delete.
      if (isMissingPathError(error) || errorCode(error) === 'EISDIR') return;
      throw error;
    }
    await this.removeEmptyFolders(dirname(path));
  }

  async *list(params: { prefix: string }): AsyncGenerator<BlobInfo> {
    yield* this.listFolder({ folderKey: '', prefix: params.prefix });
  }

  async createMultipartUpload(params: { key: string; contentType?: string }): Promise<{ uploadId: string }> {
    assertUsableKey(params.key);
    const uploadId = randomBytes(16).toString('hex');
    const folder = join(this.multipartDirectory, uploadId);
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, UPLOAD_KEY_FILE), params.key);
    return { uploadId };
  }

  async uploadPart(params: {
    key: string;
    uploadId: string;
    partNumber: number;
    body: Readable | Buffer;
    bytes?: number;
  }): Promise<CompletedPart> {
    assertValidPartNumber(params.partNumber);
    const folder = await this.uploadFolder({ key: params.key, uploadId: params.uploadId });
    // The etag is S3's for a part: the quoted md5 of its bytes, computed while they stream by.
    const md5 = createHash('md5');
    const written = await this.writeTemporaryFile({ chunks: chunksOf(params.body), onChunk: (chunk) => md5.update(chunk) });
    try {
      if (params.bytes !== undefined && written.bytes !== params.bytes) {
        throw new Error(
          `part ${params.partNumber} of multipart upload "${params.uploadId}" of "${params.key}" has ${written.bytes} bytes, not the ${params.bytes} announced`,
        );
      }
      // Renaming over an earlier upload of the same number replaces it atomically.
      await rename(written.path, join(folder, String(params.partNumber)));
    } catch (error) {
      await rm(written.path, { force: true });
      if (isMissingPathError(error)) throw uploadNotFoundError({ key: params.key, uploadId: params.uploadId });
      throw error;
    }
    return { partNumber: params.partNumber, etag: `"${md5.digest('hex')}"` };
  }

  async completeMultipartUpload(params: { key: string; uploadId: string; parts: CompletedPart[] }): Promise<{ bytes: number }> {
    const path = this.blobPath(params.key);
    const folder = await this.uploadFolder({ key: params.key, uploadId: params.uploadId });
    const parts = sortCompletedParts(params);
    const describePart = (partNumber: number): string => `part ${partNumber} of multipart upload "${params.uploadId}" of "${params.key}"`;

    // Checking presence and sizes first fails a bad request before any bytes are copied.
    const partFiles = await Promise.all(
      parts.map(async (part, index) => {
        const partPath = join(folder, String(part.partNumber));
        const size = await stat(partPath).then(
          (info) => info.size,
          (error: unknown) => {
            if (isMissingPathError(error)) throw new Error(`${describePart(part.partNumber)} was never uploaded`);
            throw error;
          },
        );
        if (index < parts.length - 1 && size < MIN_MULTIPART_PART_BYTES) {
          throw new Error(
            `${describePart(part.partNumber)} has ${size} bytes; every part but the last needs at least ${MIN_MULTIPART_PART_BYTES}`,
          );
        }
        return { ...part, path: partPath };
      }),
    );

    async function* verifiedPartChunks(): AsyncGenerator<Buffer> {
      for (const part of partFiles) {
        const md5 = createHash('md5');
        for await (const chunk of createReadStream(part.path)) {
          const bytes = chunkToBuffer(chunk);
          md5.update(bytes);
          yield bytes;
        }
        // S3 ignores quotes around etags; so do we. A mismatch means the caller lists a part that was since replaced.
        if (md5.digest('hex') !== unquoteEtag(part.etag)) {
          throw new Error(`${describePart(part.partNumber)} does not match etag ${part.etag}: it was uploaded again with other bytes`);
        }
      }
    }

    const written = await this.writeTemporaryFile({ chunks: verifiedPartChunks() });
    await this.moveIntoPlace({ temporaryPath: written.path, path, key: params.key });
    await rm(folder, { recursive: true, force: true });
    return { bytes: written.bytes };
  }

  async abortMultipartUpload(params: { key: string; uploadId: string }): Promise<void> {
    assertUsableKey(params.key);
    // Idempotent: aborting an upload that is gone (or belongs to another key) changes nothing.
    if (!UPLOAD_ID_PATTERN.test(params.uploadId)) return;
    const folder = join(this.multipartDirectory, params.uploadId);
    const uploadKey = await readFile(join(folder, UPLOAD_KEY_FILE), 'utf8').catch((error: unknown) => {
      if (isMissingPathError(error)) return undefined;
      throw error;
    });
    if (uploadKey !== params.key) return;
    await rm(folder, { recursive: true, force: true });
  }

  async ping(): Promise<void> {
    await mkdir(this.temporaryDirectory, { recursive: true });
    const probe = join(this.temporaryDirectory, `ping-${randomBytes(8).toString('hex')}`);
    await writeFile(probe, 'ping');
    await rm(probe);
  }

  /** The file of a key, after checking the key. */
  private blobPath(key: string): string {
    assertUsableKey(key);
    return join(this.directory, ...key.split('/'));
  }

  /** The folder of a multipart upload of `key`, or a clear error when there is none (never started, completed or aborted). */
  private async uploadFolder(params: { key: string; uploadId: string }): Promise<string> {
    assertUsableKey(params.key);
    if (!UPLOAD_ID_PATTERN.test(params.uploadId)) throw uploadNotFoundError(params);
    const folder = join(this.multipartDirectory, params.uploadId);
    const uploadKey = await readFile(join(folder, UPLOAD_KEY_FILE), 'utf8').catch((error: unknown) => {
      if (isMissingPathError(error)) throw uploadNotFoundError(params);
      throw error;
    });
    if (uploadKey !== params.key) throw uploadNotFoundError(params);
    return folder;
  }

  /** Streams chunks into a new fsynced file under `.tmp/`; removes it again when anything fails. */
  private async writeTemporaryFile(params: {
    chunks: AsyncIterable<Buffer>;
    onChunk?: (chunk: Buffer) => void;
    /** Told the file's path once it exists, before anything is written to it. */
    onFile?: LocalFileListener;
  }): Promise<{ path: string; bytes: number }> {
    await mkdir(this.temporaryDirectory, { recursive: true });
    const path = join(this.temporaryDirectory, randomBytes(16).toString('hex'));
    const handle = await open(path, 'wx');
    await params.onFile?.(path).catch(() => undefined); // the listener's failure is its own
    let bytes = 0;
    // Network streams deliver ~64 KiB chunks; writing them in ~1 MiB runs halves the cost of a put.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      await writeChunksFully(handle, pending);
      pending = [];
      pendingBytes = 0;
    };
    try {
      for await (const chunk of params.chunks) {
        params.onChunk?.(chunk);
        pending.push(chunk);
        pendingBytes += chunk.length;
        bytes += chunk.length;
        if (pendingBytes >= 1024 * 1024) await flush();
      }
      await flush();
      await handle.sync();
    } catch (error) {
      await handle.close();
      await rm(path, { force: true });
      throw error;
    }
    await handle.close();
    return { path, bytes };
  }

  /** Renames a finished temporary file to the blob's path (atomic on one filesystem) and makes the rename durable. */
  private async moveIntoPlace(params: { temporaryPath: string; path: string; key: string }): Promise<void> {
    const folder = dirname(params.path);
    try {
      // A concurrent delete may remove an emptied parent folder between mkdir and rename: retry then.
      for (let attempt = 1; ; attempt++) {
        await mkdir(folder, { recursive: true });
        try {
          await rename(params.temporaryPath, params.path);
          break;
        } catch (error) {
          if (errorCode(error) !== 'ENOENT' || attempt >= 3) throw error;
        }
      }
    } catch (error) {
      await rm(params.temporaryPath, { force: true });
      const code = errorCode(error);
      if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR') {
        throw new Error(
          `cannot store blob "${params.key}": in the filesystem store a key cannot be both a blob and a folder of other keys`,
          { cause: error },
        );
      }
      throw error;
    }
    const folderHandle = await open(folder, 'r');
    try {
      await folderHandle.sync();
    } finally {
      await folderHandle.close();
    }
  }

  /** Removes folders left empty by a delete, up to (not including) the store's root. */
  private async removeEmptyFolders(folder: string): Promise<void> {
    let current = folder;
    while (current.startsWith(this.directory + sep)) {
      try {
        await rmdir(current);
      } catch {
        return; // Not empty (other keys live there) or already gone: either way, done.
      }
      current = dirname(current);
    }
  }

  /** Blobs under the folder of `folderKey` whose keys start with `prefix`, in key order. */
  private async *listFolder(params: { folderKey: string; prefix: string }): AsyncGenerator<BlobInfo> {
    const folderPath = params.folderKey === '' ? this.directory : join(this.directory, ...params.folderKey.split('/'));
    let entries: Dirent[];
    try {
      entries = await readdir(folderPath, { withFileTypes: true });
    } catch (error) {
      if (isMissingPathError(error)) return; // Deleted while we were listing.
      throw error;
    }
    const candidates = entries
      .filter((entry) => !(params.folderKey === '' && RESERVED_FIRST_SEGMENTS.has(entry.name)))
      .map((entry) => {
        const key = params.folderKey === '' ? entry.name : `${params.folderKey}/${entry.name}`;
        // A folder's keys all start with `<folder>/`, so it sorts by that among its siblings
        // (`a-b` < `a/x` < `a0`).
        return { entry, key, sortKey: entry.isDirectory() ? `${key}/` : key };
      })
      .filter((candidate) => isValidBlobKey(candidate.key))
      .sort((first, second) => (first.sortKey < second.sortKey ? -1 : first.sortKey > second.sortKey ? 1 : 0));

    for (const { entry, key, sortKey } of candidates) {
      if (entry.isDirectory()) {
        if (sortKey.startsWith(params.prefix) || params.prefix.startsWith(sortKey)) {
          yield* this.listFolder({ folderKey: key, prefix: params.prefix });
        }
      } else if (entry.isFile() && key.startsWith(params.prefix)) {
        const info = await this.head({ key });
        if (info) yield info; // Absent when deleted since readdir.
      }
    }
  }
}

/** A valid key that does not collide with the store's own folders. */
function assertUsableKey(key: string): void {
  assertValidBlobKey(key);
  if (RESERVED_FIRST_SEGMENTS.has(key.split('/')[0] ?? '')) {
    throw new InvalidBlobKeyError(
      `invalid blob key "${key}": the filesystem store keeps its own files under ${[...RESERVED_FIRST_SEGMENTS].join(' and ')}`,
    );
  }
}

function uploadNotFoundError(params: { key: string; uploadId: string }): Error {
  return new Error(
    `multipart upload "${params.uploadId}" of "${params.key}" does not exist: it was never started, or was completed or aborted`,
  );
}

function unquoteEtag(etag: string): string {
  return etag.replace(/"/g, '');
}

function isValidBlobKey(key: string): boolean {
  try {
    assertValidBlobKey(key);
    return true;
  } catch {
    return false;
  }
}

/** The errno code of a Node error; checked structurally, as `instanceof Error` fails across realms (jest's VM). */
function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/** ENOTDIR: a path segment is a file, so the path cannot exist either. */
function isMissingPathError(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}
