import { DataType, Precision, type Field, type RecordBatch, type Schema, type Vector } from 'apache-arrow';
import type { Feature } from '@kura/schema';
import { stepLineKeys } from './step-line.js';

/**
 * Kura NDJSON out (README "Export"): one step per line in the upload format's shape — `episode`,
 * `step`, `timestamp`, `observation`, `action`, `reward`, `discount`, `isTerminal`, `language` —
 * plus `dataset` in slices of several datasets and `features` for feature columns that are neither
 * observations nor actions. Images are `{ "jpeg" | "png": "<base64>" }`, video frames
 * `{ "video": { "blob", "timestamp" } }`. Float32 values are written with the fewest digits that
 * read back to the same float32.
 */
export async function* batchesToNdjson(params: { schema: Schema; batches: AsyncIterable<RecordBatch> }): AsyncGenerator<Buffer> {
  const writers = params.schema.fields.map(columnWriter);
  for await (const batch of params.batches) {
    const columns = params.schema.fields.map((field) => batch.getChild(field.name));
    const lines: string[] = [];
    for (let row = 0; row < batch.numRows; row++) {
      const line: StepLine = {};
      writers.forEach((write, index) => write(line, columns[index]!, row));
      lines.push(JSON.stringify(orderKeys(line)));
    }
    yield Buffer.from(lines.join('\n') + '\n', 'utf8');
  }
}

/** One step line of a Kura NDJSON export (what `GET /v1/slices/:id/data?format=ndjson` sends). */
export interface StepLine {
  dataset?: string;
  episode?: number;
  step?: number;
  timestamp?: number;
  observation?: Record<string, unknown>;
  action?: unknown;
  reward?: number;
  discount?: number;
  isTerminal?: boolean;
  language?: string;
  features?: Record<string, unknown>;
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
    return (line, column, row) => {
      const action = (line.action ?? {}) as Record<string, unknown>;
      action[name] = read(column, row);
      line.action = action;
    };
  }
  if (field.name.startsWith('observation.')) {
    const name = field.name.slice('observation.'.length);
    return (line, column, row) => ((line.observation ??= {})[name] = read(column, row));
  }
  return (line, column, row) => ((line.features ??= {})[field.name] = read(column, row));
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

/** The shortest decimal that reads back as the same float32 (7.1, not 7.099999904632568). */
export function shortFloat32(value: number): number {
  if (!Number.isFinite(value) || Number.isInteger(value)) return value;
  for (let precision = 6; precision < 9; precision++) {
    const candidate = Number(value.toPrecision(precision));
    if (Math.fround(candidate) === value) return candidate;
  }
  return Number(value.toPrecision(9));
}
