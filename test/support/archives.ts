import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import yazl from 'yazl';

/** A .tar.gz of a folder's files (paths relative to it, under an optional top folder), in memory: test fixtures are small. */
export async function tarGzOfFolder(folder: string, topFolder?: string): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<void>((resolve, reject) => {
    archive.on('end', resolve);
    archive.on('error', reject);
  });
  const walk = async (current: string): Promise<void> => {
    for (const entry of (await readdir(current, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) {
        const name = relative(folder, path);
        archive.entry({ name: topFolder ? `${topFolder}/${name}` : name }, await readFile(path));
      }
    }
  };
  await walk(folder);
  archive.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

/** A .tar.gz with one hand-made entry, for hostile archives (traversal, links). */
export async function tarGzWithEntry(
  header: { name: string; type?: 'file' | 'symlink' | 'link'; linkname?: string },
  content: string | Buffer = 'x',
): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<void>((resolve) => archive.on('end', resolve));
  archive.entry({ name: 'ok.ndjson' }, '{"episode":0,"step":0,"action":[1]}\n');
  archive.entry(
    { name: header.name, type: header.type ?? 'file', ...(header.linkname ? { linkname: header.linkname } : {}) },
    header.type === 'file' || !header.type ? content : undefined,
  );
  archive.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

/** A .tar.gz of the given entries (file contents by path; `{ link }` makes a symbolic link). */
export async function tarGzOf(entries: Record<string, string | Buffer | { link: string }>): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<void>((resolve) => archive.on('end', resolve));
  for (const [name, content] of Object.entries(entries)) {
    if (typeof content === 'object' && !Buffer.isBuffer(content)) archive.entry({ name, type: 'symlink', linkname: content.link });
    else archive.entry({ name }, content);
  }
  archive.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

/** A .zip of the given files (contents by path). */
export async function zipOf(entries: Record<string, string | Buffer>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, content] of Object.entries(entries)) zip.addBuffer(Buffer.from(content), name);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The files of a tar, by name. */
export async function untar(bytes: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const reader = extract();
  const done = new Promise<void>((resolve, reject) => {
    reader.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        files.set(header.name, Buffer.concat(chunks));
        next();
      });
    });
    reader.on('finish', resolve);
    reader.on('error', reject);
  });
  reader.end(bytes);
  await done;
  return files;
}
