import { chmod, cp, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** A writable copy of a fixture folder inside `scratch` (fixtures are never written by tests). */
export async function writableCopy(fixture: string, scratch: string): Promise<string> {
  const folder = join(scratch, `upload-${Math.random().toString(36).slice(2, 10)}`);
  await cp(fixture, folder, { recursive: true });
  const makeWritable = async (path: string): Promise<void> => {
    await chmod(path, 0o755);
    for (const entry of await readdir(path, { withFileTypes: true })) {
      if (entry.isDirectory()) await makeWritable(join(path, entry.name));
      else await chmod(join(path, entry.name), 0o644);
    }
  };
  await makeWritable(folder);
  return folder;
}
