import { open as openFile } from 'node:fs/promises';
import { isNumericDtype, numericDtypeTable, type ErrorLocation } from '@kura/schema';
import type { Dataset, Entity, File as H5File, Group, OutputData } from 'h5wasm/node';
import { IngestBudget } from '../budget.js';
import { ImportError, type NumericArray, type SourceFile } from '../importer.js';
import { allocateTyped, type NumericDtype } from '../typed-arrays.js';

type H5wasm = typeof import('h5wasm/node');

export type { NumericDtype };

/** What a dataset holds, read from its metadata only (no data). */
export interface DatasetInfo {
  /** Absolute HDF5 path, e.g. `/observations/qpos`; the `field` of error locations. */
  path: string;
  /** Full shape, first axis = steps. Scalars have `[]`. */
  shape: number[];
  /** The Kura dtype, or undefined when Kura cannot store the HDF5 type (see `typeName`). */
  dtype: NumericDtype | undefined;
  /** The HDF5 type in words, for messages: `float32`, `string`, `compound`, `float16`. */
  typeName: string;
  /** Bytes of one element as HDF5 stores it (a pointer's for variable-length strings). */
  elementBytes: number;
}

/** Extensions an uploaded HDF5 file may carry. */
export const hdf5Extensions = ['.hdf5', '.h5', '.hdf', '.he5'];

/** The HDF5 superblock signature. */
const signature = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
/** A superblock sits at 0 or, after a user block, at 512, 1024, 2048… (powers of two). */
const superblockOffsets = [0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

let loading: Promise<H5wasm> | undefined;

/** What HDF5 may open while Kura reads an upload: the one file being opened, nothing else. */
interface Confinement {
  allowedPath: string | undefined;
  /** Paths HDF5 tried to open and was refused. */
  refused: string[];
}
let confinement: Confinement | undefined;

/** Emscripten's FS, as far as the confinement uses it. */
interface HookableFileSystem {
  open: (path: string, ...rest: unknown[]) => unknown;
  ErrnoError: new (errno: number) => Error;
}

function isHookable(fileSystem: unknown): fileSystem is HookableFileSystem {
  return (
    typeof fileSystem === 'object' &&
    fileSystem !== null &&
    'open' in fileSystem &&
    typeof fileSystem.open === 'function' &&
    'ErrnoError' in fileSystem &&
    typeof fileSystem.ErrnoError === 'function'
  );
}

/** Emscripten's errno for "permission denied". */
const emscriptenEacces = 2;
/** open(2) flags as Emscripten passes them (Linux values). */
const openFlags = { create: 0o100, exclusive: 0o200, directory: 0o200000 } as const;

/**
 * Whether an open can yield bytes of an existing file: not one that creates a new file (HDF5's error
 * reporting writes through mkstemp) nor a folder (its filter-plugin search).
 */
function readsExistingFile(flags: unknown): boolean {
  if (typeof flags !== 'number') return true;
  const createsNew = (flags & openFlags.create) !== 0 && (flags & openFlags.exclusive) !== 0;
  return !createsNew && (flags & openFlags.directory) === 0;
}

/**
 * h5wasm's Node build reads the host file system directly (NODERAWFS), and HDF5 opens other files on
 * its own: the target of an external link, the files of a dataset's external storage, the sources of
 * a virtual dataset — by absolute or `../` paths. While Kura reads an upload (inside `guard`), every
 * open but the upload's own file is refused and noted, so no byte outside the upload can be read,
 * whatever HDF5 feature points there; `guard` turns the note into HDF5_EXTERNAL_REFUSED.
 */
function confineFileSystem(fileSystem: unknown): void {
  if (!isHookable(fileSystem)) throw new Error("h5wasm's file system cannot be confined: FS.open or FS.ErrnoError is missing");
  const open = fileSystem.open.bind(fileSystem);
  fileSystem.open = (path, ...rest) => {
    if (confinement !== undefined && path !== confinement.allowedPath && readsExistingFile(rest[0])) {
      confinement.refused.push(path);
      throw new fileSystem.ErrnoError(emscriptenEacces);
    }
    return open(path, ...rest);
  };
}

/**
 * h5wasm, loaded once and only when an HDF5 source is met (4 MB of WebAssembly). The Node build
 * reads host files through Emscripten's NODERAWFS: HDF5 seeks and reads what it needs, the file
 * is never copied into memory.
 */
export function loadH5wasm(): Promise<H5wasm> {
  loading ??= (async () => {
    const h5wasm = await import('h5wasm/node');
    const module = await h5wasm.ready;
    // By default HDF5 errors are printed to stderr and calls carry on with invalid ids; this makes them throw.
    module.activate_throwing_error_handler();
    confineFileSystem(module.FS);
    return h5wasm;
  })();
  // A failed load is retried by the next import rather than remembered.
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}

/** Whether the file starts with the HDF5 signature (at offset 0 or after a user block). Reads a few bytes. */
export async function hasHdf5Signature(absolutePath: string): Promise<boolean> {
  const handle = await openFile(absolutePath, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = new Uint8Array(signature.length);
    for (const offset of superblockOffsets) {
      if (offset + signature.length > size) break;
      const { bytesRead } = await handle.read(buffer, 0, signature.length, offset);
      if (bytesRead === signature.length && signature.every((byte, index) => buffer[index] === byte)) return true;
    }
    return false;
  } finally {
    await handle.close();
  }
}

/** The source's files that may be HDF5, in natural order (`episode_2` before `episode_10`). */
export function hdf5Candidates(files: readonly SourceFile[]): SourceFile[] {
  const named = files.filter((file) => hdf5Extensions.some((extension) => file.path.toLowerCase().endsWith(extension)));
  // A single uploaded file is a candidate whatever its name (uploads are named by their owner).
  const candidates = named.length === 0 && files.length === 1 ? [...files] : named;
  return candidates.sort((a, b) => naturalOrder.compare(a.path, b.path));
}

/** Compares strings with runs of digits as numbers: `demo_2` < `demo_10`. */
export const naturalOrder = new Intl.Collator('en', { numeric: true });

/**
 * One open HDF5 file. Every h5wasm call goes through here so that library errors become
 * ImportErrors with a location. Close it when done: the handle lives in the WebAssembly heap.
 */
export class Hdf5File {
  private constructor(
    private readonly h5wasm: H5wasm,
    private readonly handle: H5File,
    /** The file's path inside the upload (for error locations). */
    readonly sourcePath: string,
    /** Every read reserves its declared size here first (a sparse dataset may declare gigabytes in kilobytes). */
    private readonly budget: IngestBudget,
  ) {}

  /**
   * Opens a file of the upload read-only; HDF5_INVALID when it is not HDF5 or is damaged. Reads are
   * charged to `budget` (by default one for this file alone, with the default limits).
   */
  static async open(file: SourceFile, budget: IngestBudget = new IngestBudget(file.bytes)): Promise<Hdf5File> {
    const at = { file: file.path };
    if (file.bytes === 0) throw new ImportError('HDF5_INVALID', `${file.path} is empty`, at);
    if (!(await hasHdf5Signature(file.absolutePath))) {
      throw new ImportError('HDF5_INVALID', `${file.path} is not an HDF5 file (no HDF5 signature at offset 0, 512, 1024, …)`, at);
    }
    const h5wasm = await loadH5wasm();
    const handle = guard(() => new h5wasm.File(file.absolutePath, 'r'), at, `cannot open ${file.path}`, file.absolutePath);
    return new Hdf5File(h5wasm, handle, file.path, budget);
  }

  /** Datasets whose storage was checked (not virtual, no external storage). */
  private readonly checkedDatasets = new Set<string>();

  close(): void {
    // A failed close leaks only a handle of a read-only file; nothing to report to the importer.
    try {
      this.handle.close();
    } catch {
      /* already closed or never valid */
    }
  }

  /** The object at `path`, or undefined when nothing is there. HDF5_EXTERNAL_REFUSED for an external link. */
  private entity(path: string, at: ErrorLocation): Entity | undefined {
    let entity: Entity | undefined;
    try {
      entity = guard(() => this.handle.get(path), { ...at, field: path }, `cannot read ${path}`) ?? undefined;
    } catch (error) {
      // Name the external link on the way, when that is what HDF5 tried to follow.
      const link = error instanceof ImportError && error.code === 'HDF5_EXTERNAL_REFUSED' ? this.externalLinkOnPath(path, at) : undefined;
      throw link ? externalLinkRefused(link.path, link, at) : error;
    }
    if (entity instanceof this.h5wasm.ExternalLink) throw externalLinkRefused(path, entity, at);
    return entity;
  }

  /** The first external link among `/a`, `/a/b`, … of `path`, reading the links themselves, not their targets. */
  private externalLinkOnPath(path: string, at: ErrorLocation): { path: string; filename: string; obj_path: string } | undefined {
    const segments = path.split('/').filter((segment) => segment !== '');
    for (let depth = 1; depth <= segments.length; depth++) {
      const prefix = `/${segments.slice(0, depth).join('/')}`;
      const link = guard(() => this.handle.get_external_link(prefix), { ...at, field: prefix }, `cannot read ${prefix}`);
      if (isExternalLinkValue(link)) return { path: prefix, filename: link.filename, obj_path: link.obj_path };
    }
    return undefined;
  }

  group(path: string, at: ErrorLocation): Group | undefined {
    const entity = this.entity(path, at);
    return entity instanceof this.h5wasm.Group ? entity : undefined;
  }

  private dataset(path: string, at: ErrorLocation): Dataset | undefined {
    const entity = this.entity(path, at);
    if (!(entity instanceof this.h5wasm.Dataset)) return undefined;
    if (!this.checkedDatasets.has(path)) {
      this.refuseExternalStorage(entity, path, at);
      this.checkedDatasets.add(path);
    }
    return entity;
  }

  /**
   * Refuses a virtual dataset (its metadata lists the sources) and one with external storage, before
   * its data is read. h5wasm does not report external storage, and a dataset with it is contiguous:
   * for those, one element is read under the confinement, which refuses the open of the external
   * file (no byte of it is read). Any other failure of that probe is left to the real read to report.
   */
  private refuseExternalStorage(dataset: Dataset, path: string, at: ErrorLocation): void {
    const metadata = guard(() => dataset.metadata, { ...at, field: path }, `cannot read the metadata of ${path}`);
    const source = metadata.virtual_sources?.[0];
    if (metadata.virtual_sources !== undefined) {
      throw new ImportError(
        'HDF5_EXTERNAL_REFUSED',
        `${this.sourcePath}: ${path} is a virtual dataset${source ? ` (its data comes from ${source.dset_name} in "${source.file_name}")` : ''}; ${externalRule}`,
        { ...at, field: path },
      );
    }
    const shape = metadata.shape ?? [];
    if (metadata.chunks !== null || metadata.shape === null || shape.some((dimension) => dimension === 0)) return;
    const probe: Confinement = { allowedPath: undefined, refused: [] };
    const previous = confinement;
    confinement = probe;
    try {
      if (shape.length === 0) void dataset.value;
      else void dataset.slice(shape.map(() => [0, 1]));
    } catch {
      // Not this check's business: the read that needs the data reports it.
    } finally {
      confinement = previous;
    }
    if (probe.refused.length > 0) {
      throw new ImportError(
        'HDF5_EXTERNAL_REFUSED',
        `${this.sourcePath}: ${path} keeps its data in an external file ("${probe.refused[0]}", HDF5 external storage); ${externalRule}`,
        { ...at, field: path },
      );
    }
  }

  /** Whether `path` names a dataset. */
  hasDataset(path: string, at: ErrorLocation): boolean {
    return this.dataset(path, at) !== undefined;
  }

  /**
   * The names of a group's members (HDF5 lists them by name), or [] when there is no such group.
   * HDF5_EXTERNAL_REFUSED when one of them is an external link, whether or not it is read later.
   */
  keys(path: string, at: ErrorLocation): string[] {
    const group = this.group(path, at);
    if (!group) return [];
    const names = guard(() => group.keys(), { ...at, field: path }, `cannot list ${path}`);
    for (const name of names) {
      const memberPath = `${path === '/' ? '' : path}/${name}`;
      // Reads the link itself, not what it points to.
      const link = guard(() => this.handle.get_external_link(memberPath), { ...at, field: memberPath }, `cannot read ${memberPath}`);
      if (isExternalLinkValue(link)) throw externalLinkRefused(memberPath, { filename: link.filename, obj_path: link.obj_path }, at);
    }
    return names;
  }

  /** Whether the member of a group is itself a group. */
  isGroup(path: string, at: ErrorLocation): boolean {
    return this.group(path, at) !== undefined;
  }

  /** The attributes of an object as JSON-compatible values (strings, numbers, booleans, arrays). */
  attributes(path: string, at: ErrorLocation): Record<string, unknown> {
    const entity = this.entity(path, at);
    if (!(entity instanceof this.h5wasm.Group || entity instanceof this.h5wasm.Dataset)) return {};
    return guard(
      () => Object.fromEntries(Object.entries(entity.attrs).map(([name, attribute]) => [name, attribute.json_value])),
      { ...at, field: path },
      `cannot read the attributes of ${path}`,
    );
  }

  /** One attribute as a JSON-compatible value, or undefined when absent (reads no other attribute's value). */
  attribute(path: string, name: string, at: ErrorLocation): unknown {
    const entity = this.entity(path, at);
    if (!(entity instanceof this.h5wasm.Group || entity instanceof this.h5wasm.Dataset)) return undefined;
    return guard(() => entity.attrs[name]?.json_value, { ...at, field: path }, `cannot read the attribute ${name} of ${path}`);
  }

  /** The metadata of a dataset; HDF5_DATASET_MISSING when there is none at `path`. */
  inspect(path: string, at: ErrorLocation): DatasetInfo {
    const dataset = this.dataset(path, at);
    if (!dataset) {
      const what = this.group(path, at) ? 'a group, not a dataset' : 'missing';
      throw new ImportError('HDF5_DATASET_MISSING', `${this.sourcePath}: ${path} is ${what}`, { ...at, field: path });
    }
    const metadata = guard(() => dataset.metadata, { ...at, field: path }, `cannot read the metadata of ${path}`);
    return { path, shape: metadata.shape ?? [], elementBytes: metadata.size, ...describeType(metadata) };
  }

  /** Before a dataset is read in batches: whether all `rows` of it would fit the upload's decoded budget. */
  checkRowsAhead(info: DatasetInfo, rows: number, at: ErrorLocation): void {
    this.budget.checkAhead(rows * elementCount(info.shape.slice(1)) * Math.max(info.elementBytes, 1), { ...at, field: info.path });
  }

  /** Reserves the bytes of `elements` elements of a dataset before they are read: INGEST_LIMIT_EXCEEDED past the budget. */
  private reserve(info: DatasetInfo, elements: number, at: ErrorLocation, what: string): void {
    this.budget.reserveBytes(elements * Math.max(info.elementBytes, 1), { ...at, field: info.path }, `${this.sourcePath}: ${what}`);
  }

  /** The whole dataset as the typed array of its dtype (HDF5 converts big-endian data to native order). */
  readNumeric(info: DatasetInfo, at: ErrorLocation): NumericArray {
    const dtype = requireNumeric(info, at);
    const dataset = this.requireDataset(info.path, at);
    if (info.shape.some((dimension) => dimension === 0)) return allocateTyped(dtype, 0);
    this.reserve(info, elementCount(info.shape), at, `${info.path} (${info.typeName} [${info.shape.join(', ')}])`);
    const value = guard(() => dataset.value, { ...at, field: info.path }, `cannot read ${info.path}`);
    return toNumericArray(value, dtype, info, at);
  }

  /** A dataset of strings (fixed-length byte strings as h5py writes numpy `S` arrays, or variable-length). */
  readStrings(path: string, at: ErrorLocation): string[] {
    const dataset = this.requireDataset(path, at);
    const info = this.inspect(path, at);
    this.reserve(info, elementCount(info.shape), at, `${path} (${info.typeName} [${info.shape.join(', ')}])`);
    const value = guard(() => dataset.value, { ...at, field: path }, `cannot read ${path}`);
    const values = Array.isArray(value) ? value : [value];
    if (!values.every((item): item is string => typeof item === 'string')) {
      throw new ImportError('HDF5_DTYPE_UNSUPPORTED', `${path} should list names as strings`, { ...at, field: path });
    }
    return values;
  }

  /** Rows `[start, end)` of the first axis of a uint8 dataset, as one flat array. */
  readUint8Rows(info: DatasetInfo, start: number, end: number, at: ErrorLocation): Uint8Array {
    const dataset = this.requireDataset(info.path, at);
    const rows = Math.max(0, Math.min(end, info.shape[0] ?? 0) - start);
    this.reserve(info, rows * elementCount(info.shape.slice(1)), at, `rows ${start}…${end - 1} of ${info.path} [${info.shape.join(', ')}]`);
    const value = guard(() => dataset.slice([[start, end]]), { ...at, field: info.path }, `cannot read ${info.path}`);
    if (!(value instanceof Uint8Array)) {
      throw new ImportError('HDF5_DTYPE_UNSUPPORTED', `${info.path} is ${info.typeName}, not uint8`, { ...at, field: info.path });
    }
    return value;
  }

  private requireDataset(path: string, at: ErrorLocation): Dataset {
    const dataset = this.dataset(path, at);
    if (!dataset) throw new ImportError('HDF5_DATASET_MISSING', `${this.sourcePath}: ${path} is missing`, { ...at, field: path });
    return dataset;
  }
}

/** The number of elements of a shape (1 for a scalar's `[]`). */
function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

/** Opens a file, runs `use`, and closes the file whatever happens; reads are charged to `budget` when given. */
export async function withHdf5File<T>(file: SourceFile, use: (hdf5: Hdf5File) => T | Promise<T>, budget?: IngestBudget): Promise<T> {
  const hdf5 = await Hdf5File.open(file, budget);
  try {
    return await use(hdf5);
  } finally {
    hdf5.close();
  }
}

/** The dtype of a dataset that must be numeric; HDF5_DTYPE_UNSUPPORTED otherwise. */
export function requireNumeric(info: DatasetInfo, at: ErrorLocation): NumericDtype {
  if (info.dtype === undefined) {
    throw new ImportError(
      'HDF5_DTYPE_UNSUPPORTED',
      `${info.path} holds ${info.typeName} values; Kura reads integers, floats (32/64-bit) and booleans here`,
      {
        ...at,
        field: info.path,
      },
    );
  }
  return info.dtype;
}

// HDF5 type classes (H5T_class_t).
const integerClass = 0;
const floatClass = 1;
const typeClassNames: Record<number, string> = {
  2: 'time',
  3: 'string',
  4: 'bitfield',
  5: 'opaque',
  6: 'compound',
  7: 'reference',
  8: 'enum',
  9: 'variable-length',
  10: 'array',
};
const enumClass = 8;

function describeType(metadata: Dataset['metadata']): Pick<DatasetInfo, 'dtype' | 'typeName'> {
  if (metadata.type === integerClass) return integerType(metadata.size, metadata.signed);
  if (metadata.type === floatClass) {
    const typeName = `float${metadata.size * 8}`;
    return { dtype: isNumericDtype(typeName) ? typeName : undefined, typeName };
  }
  if (metadata.type === enumClass && metadata.enum_type) {
    // h5py stores numpy bools as an enum {FALSE: 0, TRUE: 1}.
    const members = Object.keys(metadata.enum_type.members).sort();
    if (members.length === 2 && members[0] === 'FALSE' && members[1] === 'TRUE') return { dtype: 'bool', typeName: 'bool' };
    const base = integerType(metadata.size, metadata.signed);
    return { dtype: base.dtype, typeName: `enum of ${base.typeName}` };
  }
  return { dtype: undefined, typeName: typeClassNames[metadata.type] ?? `HDF5 type class ${metadata.type}` };
}

function integerType(size: number, signed: boolean): Pick<DatasetInfo, 'dtype' | 'typeName'> {
  const typeName = `${signed ? 'int' : 'uint'}${size * 8}`;
  return { dtype: integerDtype(typeName), typeName };
}

/** The Kura dtype of an HDF5 integer type (`int16`, `uint8`…); uint64 has no lossless one. */
function integerDtype(name: string): NumericDtype | undefined {
  return isNumericDtype(name) ? name : undefined;
}

/** Copies values into the typed array of `dtype` (booleans become 0/1). */
export function convertArray(values: NumericArray, dtype: NumericDtype): NumericArray {
  if (dtype !== 'bool' && values.constructor === numericDtypeTable[dtype].TypedArray) return values;
  const target = allocateTyped(dtype, values.length);
  if (target instanceof BigInt64Array) {
    for (let index = 0; index < values.length; index++) {
      const value = values[index]!;
      target[index] = typeof value === 'bigint' ? value : BigInt(Math.trunc(value));
    }
  } else {
    for (let index = 0; index < values.length; index++) {
      const value = Number(values[index]!);
      target[index] = dtype === 'bool' ? (value !== 0 ? 1 : 0) : value;
    }
  }
  return target;
}

function toNumericArray(value: OutputData | null, dtype: NumericDtype, info: DatasetInfo, at: ErrorLocation): NumericArray {
  // Scalars come back as plain numbers.
  if (typeof value === 'number') return convertArray(Float64Array.of(value), dtype);
  if (typeof value === 'bigint') return convertArray(BigInt64Array.of(value), dtype);
  if (Object.values(numericDtypeTable).some((info) => value instanceof info.TypedArray)) return convertArray(value as NumericArray, dtype);
  throw new ImportError('HDF5_DTYPE_UNSUPPORTED', `${info.path} (${info.typeName}) did not read as numbers`, { ...at, field: info.path });
}

const externalRule =
  'Kura refuses external links, external storage and virtual datasets: they read files outside the upload (store the data in the file itself)';

function externalLinkRefused(path: string, link: { filename: string; obj_path: string }, at: ErrorLocation): ImportError {
  return new ImportError(
    'HDF5_EXTERNAL_REFUSED',
    `${path} is an external link to ${link.obj_path} in "${link.filename}"; ${externalRule}`,
    { ...at, field: path },
  );
}

/** What h5wasm's get_external_link returns for an external link ({} for anything else). */
function isExternalLinkValue(value: unknown): value is { filename: string; obj_path: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    'filename' in value &&
    typeof value.filename === 'string' &&
    'obj_path' in value &&
    typeof value.obj_path === 'string'
  );
}

/**
 * Runs an h5wasm call under the confinement (only `allowedPath`, the file being opened, may be
 * opened) and turns its errors into ImportErrors: a file HDF5 tried to open outside the upload is
 * HDF5_EXTERNAL_REFUSED (whether or not the call then failed), a compression filter h5wasm lacks
 * HDF5_FILTER_UNSUPPORTED, a float width it cannot read HDF5_DTYPE_UNSUPPORTED, anything else
 * (truncated or damaged file) HDF5_INVALID, with HDF5's innermost reason in the message.
 */
export function guard<T>(call: () => T, at: ErrorLocation, what: string, allowedPath?: string): T {
  const current: Confinement = { allowedPath, refused: [] };
  const previous = confinement;
  confinement = current;
  const refusedOutside = (): ImportError =>
    new ImportError(
      'HDF5_EXTERNAL_REFUSED',
      `${what}: HDF5 tried to read "${current.refused[0] ?? ''}", outside the upload (through an external link, external storage or a virtual dataset); ${externalRule}`,
      at,
    );
  try {
    const result = call();
    if (current.refused.length > 0) throw refusedOutside();
    return result;
  } catch (error) {
    if (current.refused.length > 0) throw refusedOutside();
    if (error instanceof ImportError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    const filter = /required filter '([^']*)' is not registered/.exec(message);
    if (filter) {
      throw new ImportError(
        'HDF5_FILTER_UNSUPPORTED',
        `${what}: it is compressed with the "${filter[1]}" filter, which Kura's HDF5 reader lacks (gzip/deflate, shuffle, scale-offset and n-bit are supported)`,
        at,
      );
    }
    const width = /Float(\d+) not supported/.exec(message);
    if (width) throw new ImportError('HDF5_DTYPE_UNSUPPORTED', `${what}: ${width[1]}-bit floats are not supported`, at);
    throw new ImportError('HDF5_INVALID', `${what}: ${innermostReason(message)}`, at);
  } finally {
    confinement = previous;
  }
}

/** The last (innermost) entry of an HDF5 error stack: `#006: … in H5F__super_read(): file signature not found`. */
function innermostReason(message: string): string {
  const entries = [...message.matchAll(/#\d+: .* in ([\w.]+)\(\): (.*)/g)];
  const last = entries[entries.length - 1];
  return last?.[2]?.trim() ?? (message.split('\n')[0] ?? message).slice(0, 300);
}
