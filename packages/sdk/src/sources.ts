import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { KuraError } from './errors.js';

/** What an upload reads: a file, or a folder archived on the fly as a .tar. */
export interface UploadSource {
  /** The name the server sees (`?fileName=`): the file's, or the folder's with `.tar`. */
  fileName: string;
  /** A fresh stream of the bytes from the start. */
  open(): Readable;
  /** The file on disk, when the bytes are one (ranged reads for parts). */
  path?: string;
}

/** A file or a folder; a missing or unreadable path is a KuraError naming it. */
export async function sourceOf(path: string): Promise<UploadSource> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new KuraError('PATH_NOT_FOUND', `${path}: ${error.code === 'ENOENT' ? 'no such file or folder' : error.message}`);
  });
  if (info.isFile()) return { fileName: basename(path), open: () => createReadStream(path), path };
  if (info.isDirectory()) {
    const files = await filesUnder(path);
    if (files.length === 0) throw new KuraError('PATH_EMPTY', `${path}: the folder holds no files`);
    return { fileName: `${basename(path.replace(/[\\/]+$/, ''))}.tar`, open: () => tarOf(path, files) };
  }
  throw new KuraError('PATH_NOT_FOUND', `${path}: not a file or a folder`);
}

/** Every regular file under `root`, sorted, so the same folder always makes the same archive. */
async function filesUnder(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (directory: string): Promise<void> => {
    for (const entry of (await readdir(directory, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) found.push(path);
      // Links and devices are left out: the server refuses them in archives anyway.
    }
  };
  await walk(root);
  return found;
}

/** A deterministic tar of the files (paths relative to root, '/'-separated, owner 0, the files' mtimes). */
function tarOf(root: string, files: string[]): Readable {
  const archive = pack();
  void (async () => {
    try {
      for (const file of files) {
        const info = await lstat(file);
        const name = relative(root, file).split(sep).join('/');
        const entry = archive.entry({ name, size: info.size, mode: info.mode & 0o777, mtime: info.mtime, uid: 0, gid: 0 });
        await pipeline(createReadStream(file), entry);
      }
      archive.finalize();
    } catch (error) {
      archive.destroy(error as Error);
    }
  })();
  return Readable.from(archive);
}

/**
 * Reads the source once for its size and sha256; when `spoolTo` is given, writes the bytes there as
 * well (a folder's archive kept as a file, so its parts can be read by range and sent again).
 */
export async function describeSource(
  source: UploadSource,
  options: { spoolTo?: string; onBytes?: (bytes: number) => void } = {},
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      options.onBytes?.(bytes);
      callback(null, options.spoolTo ? chunk : undefined);
    },
  });
  if (options.spoolTo) await pipeline(source.open(), counter, createWriteStream(options.spoolTo));
  else await pipeline(source.open(), counter, new Writable({ write: (_chunk, _encoding, callback) => callback() }));
  return { bytes, sha256: hash.digest('hex') };
}
