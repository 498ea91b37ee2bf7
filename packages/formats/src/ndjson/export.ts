import { DataType, Precision, type Field, type RecordBatch, type Schema, type Vector } from 'apache-arrow';
import { sourceEpisodesOf, type Feature, type StepLine } from '@kura/schema';
import { setOwn } from '../own-keys.js';
import { stepLineKeys } from './step-line.js';

/**
 * Kura NDJSON out (README "Export"): one step per line in the upload format's shape — `episode`,
 * `step`, `timestamp`, `observation`, `action`, `reward`, `discount`, `isTerminal`, `language` —
 * plus `dataset` in slices of several datasets, `sourceEpisode` when the schema carries the source
 * episode ids (`kura.source_episodes`), and `features` for feature columns that are neither
 * observations nor actions. Images are `{ "jpeg" | "png": "<base64>" }`, video frames
 * `{ "video": { "blob", "timestamp" } }`. Float32 values are written with the fewest digits that
 * read back to the same float32.
 */
export async function* batchesToNdjson(params: { schema: Schema; batches: AsyncIterable<RecordBatch> }): AsyncGenerator<Buffer> {
  const writers = params.schema.fields.map(columnWriter);
  const sourceEpisodes = sourceEpisodesOf(params.schema.metadata);
  // Without a dataset_id column the slice has one dataset: the only one listed.
  const onlyDataset = sourceEpisodes ? Object.keys(sourceEpisodes)[0] : undefined;
  for await (const batch of params.batches) {
    const columns = params.schema.fields.map((field) => batch.getChild(field.name));
    const lines: string[] = [];
    for (let row = 0; row < batch.numRows; row++) {
      const line: StepLine = {};
      writers.forEach((write, index) => write(line, columns[index]!, row));
      if (sourceEpisodes && line.episode !== undefined)
        line.sourceEpisode = sourceEpisodes[line.dataset ?? onlyDataset ?? '']?.[String(line.episode)];
      lines.push(jsonKeepingNegativeZero(orderKeys(line)));
    }
    yield Buffer.from(lines.join('\n') + '\n', 'utf8');
  }
}

// `dataset` (slices of several datasets) and `features` (other feature columns) are the export's own.
const keyOrder: Array<keyof StepLine> = ['dataset', ...stepLineKeys.filter((key) => key !== 'success'), 'features'];

function orderKeys(line: StepLine): StepLine {
  const ordered: Record<string, unknown> = {};
  for (const key of keyOrder) if (line[key] !== undefined) ordered[key] = line[key];
  return ordered;
}

type ColumnWriter = (line: StepLine, column: Vector, row: number) => void;

function columnWriter(field: Field): ColumnWriter {
  const scalar =
    (key: 'episode' | 'step' | 'timestamp'): ColumnWriter =>
    (line, column, row) => {
      line[key] = Number(column.get(row));
    };
  switch (field.name) {
    case 'dataset_id':
      return (line, column, row) => void (line.dataset = column.get(row) as string);
    case 'episode_index':
      return scalar('episode');
    case 'step_index':
      return scalar('step');
    case 'timestamp':
      return scalar('timestamp');
    case 'is_first':
    case 'is_last':
      // Implied by the step numbers; left out so that the lines read back as an upload.
      return () => undefined;
    case 'is_terminal':
      return (line, column, row) => void (line.isTerminal = column.get(row) as boolean);
    case 'reward':
    case 'discount': {
      const key = field.name;
      return (line, column, row) => {
        const value = column.get(row) as number | null;
        if (value !== null) line[key] = shortFloat32(value);
      };
    }
    case 'language_instruction':
      return (line, column, row) => {
        const value = column.get(row) as string | null;
        if (value !== null) line.language = value;
      };
  }
  const read = featureReader(field);
  if (field.name === 'action') return (line, column, row) => void (line.action = read(column, row));
  if (field.name.startsWith('action.')) {
    const name = field.name.slice('action.'.length);
    // Own properties: a feature `action.__proto__` is written as such, not lost to the prototype.
    return (line, column, row) => {
      const action = (line.action ?? {}) as Record<string, unknown>;
      setOwn(action, name, read(column, row));
      line.action = action;
    };
  }
  if (field.name.startsWith('observation.')) {
    const name = field.name.slice('observation.'.length);
    return (line, column, row) => setOwn((line.observation ??= {}), name, read(column, row));
  }
  return (line, column, row) => setOwn((line.features ??= {}), field.name, read(column, row));
}

function featureReader(field: Field): (column: Vector, row: number) => unknown {
  const spec = field.metadata.get('kura.feature');
  const feature = spec ? (JSON.parse(spec) as Feature) : undefined;
  const type = field.type as DataType;
  if (DataType.isBinary(type)) {
    const encoding = feature?.encoding ?? 'jpeg';
    return (column, row) => ({ [encoding]: Buffer.from(column.get(row) as Uint8Array).toString('base64') });
  }
  if (DataType.isStruct(type)) {
    return (column, row) => {
      const frame = column.get(row) as { blob: string; timestamp_s: number };
      return { video: { blob: frame.blob, timestamp: frame.timestamp_s } };
    };
  }
  if (DataType.isFixedSizeList(type)) {
    const size = type.listSize;
    const isFloat32 = DataType.isFloat(type.children[0]!.type) && type.children[0]!.type.precision === Precision.SINGLE;
    return (column, row) => {
      const [data] = column.data;
      // A slice's batches are single-chunk and unsliced (they are built fresh), so values index directly.
      const values = data!.children[0]!.values as ArrayLike<number | bigint>;
      const out: Array<number | boolean> = new Array<number>(size);
      for (let component = 0; component < size; component++) {
        const value = values[row * size + component]!;
        out[component] = typeof value === 'bigint' ? Number(value) : isFloat32 ? shortFloat32(value) : value;
      }
      return out;
    };
  }
  return (column, row) => {
    const value: unknown = column.get(row);
    return typeof value === 'bigint' ? Number(value) : value;
  };
}

/**
 * JSON text of a step line with −0 written `-0.0`: JSON.stringify writes `0`, which loses the sign
 * that the source recorded (robosuite files hold thousands of −0.0). `-0.0` reads back as −0 in
 * JavaScript and as a float −0.0 in Python (`-0` would be the integer 0 there). Lines without −0,
 * nearly all, take the native path.
 */
export function jsonKeepingNegativeZero(value: unknown): string {
  if (!hasNegativeZero(value)) return JSON.stringify(value);
  if (typeof value === 'number') return '-0.0';
  if (Array.isArray(value))
    return `[${value.map((item: unknown) => (item === undefined ? 'null' : jsonKeepingNegativeZero(item))).join(',')}]`;
  const members: Array<[string, unknown]> = typeof value === 'object' && value !== null ? Object.entries(value) : [];
  return `{${members
    .filter(([, member]) => member !== undefined)
    .map(([key, member]) => `${JSON.stringify(key)}:${jsonKeepingNegativeZero(member)}`)
    .join(',')}}`;
}

function hasNegativeZero(value: unknown): boolean {
  if (typeof value === 'number') return Object.is(value, -0);
  if (Array.isArray(value)) return value.some(hasNegativeZero);
  if (typeof value === 'object' && value !== null) return Object.values(value).some(hasNegativeZero);
  return false;
}

/** The shortest decimal that reads back as the same float32 (7.1, not 7.099999904632568). */
export function shortFloat32(value: number): number {
  if (!Number.isFinite(value) || Number.isInteger(value)) return value;
  for (let precision = 6; precision < 9; precision++) {
    const candidate = Number(value.toPrecision(precision));
    if (Math.fround(candidate) === value) return candidate;
  }
  return Number(value.toPrecision(9));
}
