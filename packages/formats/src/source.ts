import { open, readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ArrivingFile, ImportSource, SourceFile } from './importer.js';

/** The files under a local folder as an ImportSource (paths relative to it, `/`-separated, sorted). */
export async function sourceFromDirectory(root: string): Promise<ImportSource> {
  const files: SourceFile[] = [];
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const absolutePath = join(folder, entry.name);
      if (entry.isDirectory()) await walk(absolutePath);
      else if (entry.isFile())
        files.push({ path: relative(root, absolutePath).split(sep).join('/'), absolutePath, bytes: (await stat(absolutePath)).size });
    }
  };
  await walk(root);
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files };
}

/** A source of given files, each named by its path inside the upload. */
export async function sourceFromFiles(files: Array<{ path: string; absolutePath: string }>): Promise<ImportSource> {
  return { files: await Promise.all(files.map(async (file) => ({ ...file, bytes: (await stat(file.absolutePath)).size }))) };
}

/** How long a reader that has caught up with an arriving file waits before it looks again. */
const ARRIVAL_POLL_MS = 5;

/**
 * A local file another process is still writing, in order, up to `bytes`: read as far as it is
 * there, then again once more has come (also before it exists). Whoever writes it kills the reader
 * if it never completes.
 */
export function arrivingFile(path: string, bytes: number): ArrivingFile {
  return {
    async *chunks(chunkBytes) {
      await arrivedBytes(path, Math.min(bytes, 1));
      const handle = await open(path, 'r');
      try {
        for (let position = 0; position < bytes;) {
          const available = Math.min((await handle.stat()).size, bytes) - position;
          if (available <= 0) {
            await sleep(ARRIVAL_POLL_MS);
            continue;
          }
          const buffer = Buffer.allocUnsafe(Math.min(available, chunkBytes));
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
          position += bytesRead;
          if (bytesRead > 0) yield buffer.subarray(0, bytesRead);
        }
      } finally {
        await handle.close();
      }
    },
  };
}

/** Waits until the arriving file at `path` holds at least `bytes` bytes (it may not be there yet). */
export async function arrivedBytes(path: string, bytes: number): Promise<void> {
  while ((await sizeSoFar(path)) < bytes) await sleep(ARRIVAL_POLL_MS);
}

async function sizeSoFar(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
}
