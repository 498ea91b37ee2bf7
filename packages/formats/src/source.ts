import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { ImportSource, SourceFile } from './importer.js';

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
