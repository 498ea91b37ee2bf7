import { open } from 'node:fs/promises';
import { hasHdf5Signature, hdf5Candidates, withHdf5File } from './hdf5/h5.js';
import { ImportError, type ImportSource, type SourceFile } from './importer.js';
import { importers } from './registry.js';

/** How many files' first bytes are looked at (an archive may hold thousands). */
const SNIFFED_FILES = 200;
/** How many names of an HDF5 file's top level are listed. */
const LISTED_MEMBERS = 20;

/**
 * What a file is by its first bytes, in words: `HDF5`, `parquet`, `zip`, `gzip`, `tar`, `JSON`,
 * `JSON lines`, `MP4`, `JPEG`, `PNG`, `NumPy`, `text`, or `binary` when none of these.
 */
export async function containerOf(file: SourceFile): Promise<string> {
  if (file.bytes === 0) return 'empty';
  const handle = await open(file.absolutePath, 'r');
  let head: Uint8Array;
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4096), 0, 4096, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  const startsWith = (bytes: number[], offset = 0) => bytes.every((byte, index) => head[offset + index] === byte);
  if (await hasHdf5Signature(file.absolutePath)) return 'HDF5';
  if (startsWith([0x50, 0x41, 0x52, 0x31])) return 'parquet';
  if (startsWith([0x50, 0x4b, 0x03, 0x04]) || startsWith([0x50, 0x4b, 0x05, 0x06])) return 'zip';
  if (startsWith([0x1f, 0x8b])) return 'gzip';
  if (startsWith([0x75, 0x73, 0x74, 0x61, 0x72], 257)) return 'tar';
  if (startsWith([0x66, 0x74, 0x79, 0x70], 4)) return 'MP4';
  if (startsWith([0xff, 0xd8, 0xff])) return 'JPEG';
  if (startsWith([0x89, 0x50, 0x4e, 0x47])) return 'PNG';
  if (startsWith([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59])) return 'NumPy';
  let text: string;
  try {
    // A multi-byte character cut at the end of the head is not a reason to call the file binary.
    text = new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, Math.max(0, head.length - 4)));
  } catch {
    return 'binary';
  }
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (lines[0]?.startsWith('{') && (lines[1]?.startsWith('{') || lines.length === 1)) return lines.length > 1 ? 'JSON lines' : 'JSON';
  if (lines[0]?.startsWith('{') || lines[0]?.startsWith('[')) return 'JSON';
  return 'text';
}

/**
 * FORMAT_UNKNOWN for a source no importer recognised. It says what Kura did recognise (the archive,
 * each file's container, and for HDF5 the members of the top level) and which layouts it tried,
 * with what each looks for, so that a user can tell a wrong file from a layout Kura lacks.
 * `archive` is the kind of archive the upload was (`tar.gz`, `zip`), when it was one.
 */
export async function unrecognisedFormatError(source: ImportSource, archive?: string): Promise<ImportError> {
  const sniffed = await Promise.all(
    source.files.slice(0, SNIFFED_FILES).map(async (file) => ({ path: file.path, container: await containerOf(file) })),
  );
  const counts = new Map<string, number>();
  for (const { container } of sniffed) counts.set(container, (counts.get(container) ?? 0) + 1);

  const hdf5Paths = new Set(sniffed.filter((entry) => entry.container === 'HDF5').map((entry) => entry.path));
  const hdf5File = hdf5Candidates(source.files.filter((file) => hdf5Paths.has(file.path)))[0];
  const hdf5 = hdf5File ? await hdf5TopLevel(hdf5File) : undefined;

  const what =
    archive !== undefined
      ? `a ${archive} archive of ${source.files.length} files (${[...counts].map(([container, count]) => `${count} ${container}`).join(', ')})`
      : sniffed.length === 1
        ? `${article(sniffed[0]!.container)} ${sniffed[0]!.container} file (${sniffed[0]!.path})`
        : `${source.files.length} files`;
  const inside = hdf5
    ? `; ${hdf5.file} ${hdf5.error ? `cannot be opened (${hdf5.error})` : `holds at its top level: ${hdf5.members.length > 0 ? hdf5.members.map((member) => `/${member.name} (${member.kind})`).join(', ') : 'nothing'}`}`
    : '';
  const layouts = importers.map((importer) => ({ format: importer.format, looksFor: importer.looksFor }));
  return new ImportError(
    'FORMAT_UNKNOWN',
    `the format of the upload could not be recognised: it is ${what}${inside}. Kura looked for ${layouts
      .map((layout) => `${layout.format}: ${layout.looksFor}`)
      .join('; ')}. Pass ?format= to get that importer's own error`,
    { ...(source.files[0] ? { file: source.files[0].path } : {}) },
    {
      container: archive ?? (sniffed.length === 1 ? sniffed[0]!.container : 'files'),
      ...(archive !== undefined ? { archive } : {}),
      files: sniffed.slice(0, LISTED_MEMBERS),
      ...(hdf5 ? { hdf5 } : {}),
      layouts,
    },
  );
}

function article(container: string): string {
  return ['HDF5', 'MP4', 'empty'].includes(container) ? 'an' : 'a';
}

/** The members of an HDF5 file's root group (first LISTED_MEMBERS), or why it could not be opened. */
async function hdf5TopLevel(
  file: SourceFile,
): Promise<{ file: string; members: Array<{ name: string; kind: 'group' | 'dataset' }>; error?: string }> {
  try {
    return await withHdf5File(file, (hdf5) => ({
      file: file.path,
      members: hdf5
        .keys('/', {})
        .slice(0, LISTED_MEMBERS)
        .map((name) => ({ name, kind: hdf5.isGroup(`/${name}`, {}) ? ('group' as const) : ('dataset' as const) })),
    }));
  } catch (error) {
    if (error instanceof ImportError) return { file: file.path, members: [], error: error.message };
    throw error;
  }
}
