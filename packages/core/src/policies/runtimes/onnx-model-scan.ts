/**
 * A look inside an ONNX model before onnxruntime loads it, for what onnxruntime would otherwise
 * allow: tensors whose data lives outside the model file. Loaded from a buffer, onnxruntime resolves
 * such a tensor's `location` against the process's working directory (it does so with graph
 * optimisations off), so an uploaded model could read a server's files into its output.
 *
 * This reads protobuf's wire format directly along the paths that hold tensors, with ONNX's field
 * numbers, and skips everything else unread.
 */

/** The messages on the way from a model to its tensors, and which fields of each lead further. */
type MessageKind = 'model' | 'graph' | 'node' | 'attribute' | 'function' | 'trainingInfo' | 'sparseTensor' | 'tensor';

const nestedMessages: Record<MessageKind, ReadonlyMap<number, MessageKind>> = {
  // ModelProto: graph = 7, training_info = 20, functions = 25.
  model: new Map([
    [7, 'graph'],
    [20, 'trainingInfo'],
    [25, 'function'],
  ]),
  // GraphProto: node = 1, initializer = 5, sparse_initializer = 15.
  graph: new Map([
    [1, 'node'],
    [5, 'tensor'],
    [15, 'sparseTensor'],
  ]),
  // NodeProto: attribute = 5.
  node: new Map([[5, 'attribute']]),
  // AttributeProto: t = 5, g = 6, tensors = 10, graphs = 11, sparse_tensor = 22, sparse_tensors = 23.
  attribute: new Map([
    [5, 'tensor'],
    [6, 'graph'],
    [10, 'tensor'],
    [11, 'graph'],
    [22, 'sparseTensor'],
    [23, 'sparseTensor'],
  ]),
  // FunctionProto: node = 7.
  function: new Map([[7, 'node']]),
  // TrainingInfoProto: initialization = 1, algorithm = 2.
  trainingInfo: new Map([
    [1, 'graph'],
    [2, 'graph'],
  ]),
  // SparseTensorProto: values = 1, indices = 2.
  sparseTensor: new Map([
    [1, 'tensor'],
    [2, 'tensor'],
  ]),
  tensor: new Map(),
};

// TensorProto fields.
const TENSOR_NAME = 8;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const DATA_LOCATION_EXTERNAL = 1;

// Protobuf wire types.
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const START_GROUP = 3;
const END_GROUP = 4;
const FIXED32 = 5;

/** The same nesting limit as protobuf's own parser, so no valid model is refused for depth. */
const MAX_DEPTH = 100;

/** The model's bytes are not a protobuf message. */
export class OnnxWireFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxWireFormatError';
  }
}

/** What the scan found. */
export interface OnnxModelScan {
  /** Names (or positions) of tensors stored outside the model; empty for a self-contained model. */
  externalTensors: string[];
}

/** Scans an ONNX model's bytes; throws OnnxWireFormatError when they are not protobuf. */
export function scanOnnxModel(bytes: Uint8Array): OnnxModelScan {
  const externalTensors: string[] = [];
  scanMessage(bytes, 0, bytes.length, 'model', 0, externalTensors);
  return { externalTensors };
}

/** Whether the bytes look like onnxruntime's own flatbuffer format (identifier "ORTM" at offset 4). */
export function isOrtFormat(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && bytes[4] === 0x4f && bytes[5] === 0x52 && bytes[6] === 0x54 && bytes[7] === 0x4d;
}

function scanMessage(bytes: Uint8Array, start: number, end: number, kind: MessageKind, depth: number, externalTensors: string[]): void {
  if (depth > MAX_DEPTH) throw new OnnxWireFormatError(`messages nested more than ${MAX_DEPTH} deep`);
  const nested = nestedMessages[kind];
  let offset = start;
  let tensorName: string | undefined;
  let external = false;
  while (offset < end) {
    const [key, afterKey] = readVarint(bytes, offset, end);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new OnnxWireFormatError(`field number 0 at byte ${offset}`);
    offset = afterKey;
    switch (wireType) {
      case VARINT: {
        const [value, next] = readVarint(bytes, offset, end);
        if (kind === 'tensor' && field === TENSOR_DATA_LOCATION && value === DATA_LOCATION_EXTERNAL) external = true;
        offset = next;
        break;
      }
      case FIXED64:
        offset = skip(offset, 8, end);
        break;
      case FIXED32:
        offset = skip(offset, 4, end);
        break;
      case LENGTH_DELIMITED: {
        const [length, contentStart] = readVarint(bytes, offset, end);
        const contentEnd = skip(contentStart, length, end);
        const child = nested.get(field);
        if (child !== undefined) scanMessage(bytes, contentStart, contentEnd, child, depth + 1, externalTensors);
        if (kind === 'tensor' && field === TENSOR_EXTERNAL_DATA) external = true;
        if (kind === 'tensor' && field === TENSOR_NAME) tensorName = new TextDecoder().decode(bytes.subarray(contentStart, contentEnd));
        offset = contentEnd;
        break;
      }
      case START_GROUP:
        offset = skipGroup(bytes, offset, end, field, depth + 1);
        break;
      default:
        throw new OnnxWireFormatError(`wire type ${wireType} at byte ${offset}`);
    }
  }
  if (offset !== end) throw new OnnxWireFormatError(`a message overruns its length at byte ${end}`);
  if (external) externalTensors.push(tensorName ?? `a tensor at byte ${start}`);
}

/** Skips a (long deprecated) group up to its matching end tag. */
function skipGroup(bytes: Uint8Array, start: number, end: number, groupField: number, depth: number): number {
  if (depth > MAX_DEPTH) throw new OnnxWireFormatError(`groups nested more than ${MAX_DEPTH} deep`);
  let offset = start;
  while (offset < end) {
    const [key, afterKey] = readVarint(bytes, offset, end);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    offset = afterKey;
    switch (wireType) {
      case VARINT:
        offset = readVarint(bytes, offset, end)[1];
        break;
      case FIXED64:
        offset = skip(offset, 8, end);
        break;
      case FIXED32:
        offset = skip(offset, 4, end);
        break;
      case LENGTH_DELIMITED: {
        const [length, contentStart] = readVarint(bytes, offset, end);
        offset = skip(contentStart, length, end);
        break;
      }
      case START_GROUP:
        offset = skipGroup(bytes, offset, end, field, depth + 1);
        break;
      case END_GROUP:
        if (field !== groupField) throw new OnnxWireFormatError(`a group ends with the wrong field at byte ${offset}`);
        return offset;
      default:
        throw new OnnxWireFormatError(`wire type ${wireType} at byte ${offset}`);
    }
  }
  throw new OnnxWireFormatError('a group is not closed');
}

/** Reads a varint as a number; exact up to 2^53, which covers every length and enum here. */
function readVarint(bytes: Uint8Array, start: number, end: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let offset = start; offset < end && offset < start + 10; offset++) {
    const byte = bytes[offset] ?? 0;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, offset + 1];
    scale *= 128;
  }
  throw new OnnxWireFormatError(`a truncated or overlong varint at byte ${start}`);
}

function skip(offset: number, length: number, end: number): number {
  if (length > end - offset) throw new OnnxWireFormatError(`a field runs past the end of its message at byte ${offset}`);
  return offset + length;
}
