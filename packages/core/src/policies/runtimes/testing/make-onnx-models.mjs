// Writes the small ONNX models the policy runtime tests and the policies bench use into ../fixtures/.
// Run with `node packages/core/src/policies/runtimes/testing/make-onnx-models.mjs`; the output is
// deterministic, so re-running it leaves the committed files unchanged. No Python needed: the models
// are encoded with protobufjs from the small subset of ONNX's protobuf schema written out below.
import { mkdir, writeFile } from 'node:fs/promises';
import protobuf from 'protobufjs';

/**
 * The parts of ONNX's ModelProto these models use, with ONNX's field numbers. Written as proto3, so
 * repeated numbers are packed; ONNX's parser accepts packed and unpacked encodings alike.
 */
const onnxSubset = `
syntax = "proto3";
package onnx;

message OperatorSetIdProto {
  string domain = 1;
  int64 version = 2;
}

message StringStringEntryProto {
  string key = 1;
  string value = 2;
}

message TensorProto {
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4;
  repeated int64 int64_data = 7;
  string name = 8;
  bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  int32 data_location = 14;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    int32 elem_type = 1;
    TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
}

message ValueInfoProto {
  string name = 1;
  TypeProto type = 2;
}

message AttributeProto {
  string name = 1;
  int64 i = 3;
  GraphProto g = 6;
  int32 type = 20;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  repeated AttributeProto attribute = 5;
}

message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}

message ModelProto {
  int64 ir_version = 1;
  string producer_name = 2;
  string producer_version = 3;
  GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
}
`;

const FLOAT = 1; // TensorProto.DataType.FLOAT
const INT64 = 7; // TensorProto.DataType.INT64
const BOOL = 9; // TensorProto.DataType.BOOL
const EXTERNAL = 1; // TensorProto.DataLocation.EXTERNAL
const IR_VERSION = 8; // ONNX 1.10+
const OPSET = 13; // MatMul, Add, Relu, Cast and Reshape all exist in this opset

const ModelProto = protobuf.parse(onnxSubset).root.lookupType('onnx.ModelProto');
const fixtures = new URL('../fixtures/', import.meta.url);

/** A tensor type (float unless told); a dimension is a size or, as a string, a symbolic name. */
function tensorType(dims, elemType = FLOAT) {
  return {
    tensorType: {
      elemType,
      shape: { dim: dims.map((dim) => (typeof dim === 'string' ? { dimParam: dim } : { dimValue: dim })) },
    },
  };
}

/** An initializer, stored as `float_data` or as little-endian `raw_data`. */
function initializer(name, dims, values, storage) {
  const tensor = { name, dims, dataType: FLOAT };
  if (storage === 'float_data') return { ...tensor, floatData: Array.from(values) };
  const raw = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => raw.writeFloatLE(value, index * 4));
  return { ...tensor, rawData: raw };
}

/**
 * A GraphProto: nodes are [opType, inputs, output, attributes?], inputs and outputs [name, dims,
 * elemType?]. Also a Loop's body, given to the Loop node as a graph attribute.
 */
function graph({ name, inputs, outputs, nodes, initializers }) {
  return {
    name,
    node: nodes.map(([opType, input, output, attribute = []], index) => ({
      name: `${opType.toLowerCase()}_${index}`,
      opType,
      input,
      output: [output],
      attribute,
    })),
    initializer: initializers,
    input: inputs.map(([inputName, dims, elemType]) => ({ name: inputName, type: tensorType(dims, elemType) })),
    output: outputs.map(([outputName, dims, elemType]) => ({ name: outputName, type: tensorType(dims, elemType) })),
  };
}

function encodeModel({ name, inputs, outputs, nodes, initializers }) {
  const model = {
    irVersion: IR_VERSION,
    producerName: 'kura make-onnx-models.mjs',
    producerVersion: '1',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: graph({ name, inputs, outputs, nodes, initializers }),
  };
  const problem = ModelProto.verify(model);
  if (problem) throw new Error(`${name}: ${problem}`);
  return Buffer.from(ModelProto.encode(ModelProto.create(model)).finish());
}

/** Row-major [rows, columns] → its transpose, so `x · Wᵀ` can be one MatMul of a [1, columns] row. */
function transpose(matrix) {
  return matrix[0].map((_, column) => matrix.map((row) => row[column]));
}

/** Deterministic uniform numbers in [-scale, scale] (a 32-bit LCG), so the MLP file never changes. */
function uniformWeights(count, scale, seed) {
  let state = seed >>> 0;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return Math.fround((state / 2 ** 32) * 2 * scale - scale);
  });
}

// (a) action = W · state + b, W 3×4. The tests repeat these numbers to compute the expected action.
const linearWeights = [
  [1, 2, 3, 4],
  [-1, 0.5, 0, 2],
  [0.25, -0.5, 1, -1],
];
const linearBias = [0.5, -1, 2];
const linear = encodeModel({
  name: 'linear_4x3',
  inputs: [['observation.state', [1, 4]]],
  outputs: [['action', [1, 3]]],
  nodes: [
    ['MatMul', ['observation.state', 'weights'], 'state_times_weights'],
    ['Add', ['state_times_weights', 'bias'], 'action'],
  ],
  initializers: [
    initializer('weights', [4, 3], transpose(linearWeights).flat(), 'float_data'),
    initializer('bias', [3], linearBias, 'float_data'),
  ],
});

// (b) 14 → 256 → 256 → 14 with ReLU, for the bench: ~73k weights as raw_data (~290 KB).
const layers = [
  [14, 256],
  [256, 256],
  [256, 14],
];
const mlpNodes = [];
const mlpInitializers = [];
let previous = 'observation.state';
layers.forEach(([fanIn, fanOut], layer) => {
  const scale = 1 / Math.sqrt(fanIn);
  mlpInitializers.push(initializer(`w${layer}`, [fanIn, fanOut], uniformWeights(fanIn * fanOut, scale, 17 + layer), 'raw_data'));
  mlpInitializers.push(initializer(`b${layer}`, [fanOut], uniformWeights(fanOut, scale, 101 + layer), 'raw_data'));
  const last = layer === layers.length - 1;
  mlpNodes.push(['MatMul', [previous, `w${layer}`], `matmul${layer}`]);
  mlpNodes.push(['Add', [`matmul${layer}`, `b${layer}`], last ? 'action' : `linear${layer}`]);
  if (!last) mlpNodes.push(['Relu', [`linear${layer}`], `hidden${layer}`]);
  previous = `hidden${layer}`;
});
const mlp = encodeModel({
  name: 'mlp_14x256x256x14',
  inputs: [['observation.state', ['batch', 14]]],
  outputs: [['action', ['batch', 14]]],
  nodes: mlpNodes,
  initializers: mlpInitializers,
});

// (c) 5 outputs where a policy of action shape [3] is expected; the declared shape gives it away at load.
const wrongOutput = encodeModel({
  name: 'wrong_output_4x5',
  inputs: [['observation.state', [1, 4]]],
  outputs: [['action', [1, 5]]],
  nodes: [
    ['MatMul', ['observation.state', 'weights'], 'state_times_weights'],
    ['Add', ['state_times_weights', 'bias'], 'action'],
  ],
  initializers: [
    initializer('weights', [4, 5], uniformWeights(20, 1, 7), 'float_data'),
    initializer('bias', [5], [0, 0, 0, 0, 0], 'float_data'),
  ],
});

// (e) the output's shape comes from a second input (cast to int64, flattened, then the shape of a
// Reshape), so only a call reveals how many numbers it holds:
// action = reshape(observation.state [1, 4], observation.layout).
const CAST_TO_INT64 = { name: 'to', type: 2 /* AttributeProto.INT */, i: INT64 };
const reshapeByInput = encodeModel({
  name: 'reshape_by_input',
  inputs: [
    ['observation.state', [1, 4]],
    ['observation.layout', [1, 2]],
  ],
  outputs: [['action', ['rows', 'columns']]],
  nodes: [
    ['Cast', ['observation.layout'], 'layout_int64', [CAST_TO_INT64]],
    ['Reshape', ['layout_int64', 'one_axis'], 'layout_vector'],
    ['Reshape', ['observation.state', 'layout_vector'], 'action'],
  ],
  initializers: [{ name: 'one_axis', dims: [1], dataType: INT64, int64Data: [-1] }],
});

// (f) a model whose bias is "stored" in a file next to it (a path that must never be read).
const externalData = encodeModel({
  name: 'external_data',
  inputs: [['observation.state', [1, 4]]],
  outputs: [['action', [1, 4]]],
  nodes: [['Add', ['observation.state', 'bias'], 'action']],
  initializers: [
    {
      name: 'bias',
      dims: [4],
      dataType: FLOAT,
      dataLocation: EXTERNAL,
      externalData: [
        { key: 'location', value: 'data/admin.key' },
        { key: 'offset', value: '0' },
        { key: 'length', value: '16' },
      ],
    },
  ],
});

// (g) what torch.onnx.export writes for a 7-joint arm: input [1, 7] (a batch of one), action [1, 2] =
// [sum of the joints, Σ (i + 1) · joint_i] + [0, 0.5]. The tests repeat these numbers.
const armWeights = [
  [1, 1, 1, 1, 1, 1, 1],
  [1, 2, 3, 4, 5, 6, 7],
];
const armBias = [0, 0.5];
const arm = encodeModel({
  name: 'arm_1x7',
  inputs: [['observation.state', [1, 7]]],
  outputs: [['action', [1, 2]]],
  nodes: [
    ['MatMul', ['observation.state', 'weights'], 'state_times_weights'],
    ['Add', ['state_times_weights', 'bias'], 'action'],
  ],
  initializers: [
    initializer('weights', [7, 2], transpose(armWeights).flat(), 'float_data'),
    initializer('bias', [2], armBias, 'float_data'),
  ],
});

// (h) action = 2 · state with both dimensions symbolic ([batch, joints]): only the manifest (or a
// dataset) can say how many joints there are.
const doubleAnyWidth = encodeModel({
  name: 'double_any_width',
  inputs: [['observation.state', ['batch', 'joints']]],
  outputs: [['action', ['batch', 'joints']]],
  nodes: [['Mul', ['observation.state', 'two'], 'action']],
  initializers: [initializer('two', [1], [2], 'float_data')],
});

// (i) an input the model fixes at [1, 100000, 100000]: 10^10 numbers per call, far past what Kura
// will build an observation of (POLICY_OBSERVATION_TOO_LARGE, before anything is allocated). The
// action is the sum of it all, a scalar, so nothing about the output gives the model away at load.
const KEEPDIMS_OFF = { name: 'keepdims', type: 2 /* AttributeProto.INT */, i: 0 };
const hugeInput = encodeModel({
  name: 'huge_input',
  inputs: [['observation.state', [1, 100000, 100000]]],
  outputs: [['action', []]],
  nodes: [['ReduceSum', ['observation.state'], 'action', [KEEPDIMS_OFF]]],
  initializers: [],
});

// (j) a Loop that never ends in practice: 10^15 trips (cond stays true), each adding 1 to a
// loop-carried [1, 4] that starts as the observation and ends as the action. The carried value comes
// from the input, so nothing about the Loop can be folded away when the session is created.
const loopBody = graph({
  name: 'add_one_forever',
  inputs: [
    ['iteration', [], INT64],
    ['cond_in', [], BOOL],
    ['carried_in', [1, 4]],
  ],
  outputs: [
    ['cond_out', [], BOOL],
    ['carried_out', [1, 4]],
  ],
  nodes: [
    ['Identity', ['cond_in'], 'cond_out'],
    ['Add', ['carried_in', 'one'], 'carried_out'],
  ],
  initializers: [initializer('one', [1], [1], 'float_data')],
});
const loopForever = encodeModel({
  name: 'loop_forever',
  inputs: [['observation.state', [1, 4]]],
  outputs: [['action', [1, 4]]],
  nodes: [
    [
      'Loop',
      ['trip_count', 'keep_going', 'observation.state'],
      'action',
      [{ name: 'body', type: 5 /* AttributeProto.GRAPH */, g: loopBody }],
    ],
  ],
  initializers: [
    { name: 'trip_count', dims: [], dataType: INT64, int64Data: [1e15] },
    { name: 'keep_going', dims: [], dataType: BOOL, rawData: Buffer.from([1]) },
  ],
});

// (k) a model that builds a [50000, 50000, 1, 1] float tensor of zeros (10 GB) and sums it into the
// action: action = state + Σ zeros. The shape is [0, 0, 0, 0] + [50000, 50000, 1, 1], the zeros
// being the observation cast to int64 times 0, so it is only known at run time: session creation's
// constant folding cannot allocate it, only a call does.
const allocateHuge = encodeModel({
  name: 'allocate_huge',
  inputs: [['observation.state', [1, 4]]],
  outputs: [['action', [1, 4]]],
  nodes: [
    ['Cast', ['observation.state'], 'state_int64', [CAST_TO_INT64]],
    ['Reshape', ['state_int64', 'one_axis'], 'state_vector'],
    ['Mul', ['state_vector', 'zero'], 'zeros'],
    ['Add', ['zeros', 'huge_dims'], 'huge_shape'],
    ['ConstantOfShape', ['huge_shape'], 'huge'],
    ['ReduceSum', ['huge'], 'huge_sum', [KEEPDIMS_OFF]],
    ['Add', ['observation.state', 'huge_sum'], 'action'],
  ],
  initializers: [
    { name: 'one_axis', dims: [1], dataType: INT64, int64Data: [-1] },
    { name: 'zero', dims: [1], dataType: INT64, int64Data: [0] },
    { name: 'huge_dims', dims: [4], dataType: INT64, int64Data: [50000, 50000, 1, 1] },
  ],
});

// (d) the linear model cut off in the middle of its weights.
const broken = linear.subarray(0, Math.floor(linear.length / 2));

await mkdir(fixtures, { recursive: true });
const files = {
  'linear-4x3.onnx': linear,
  'mlp-14x256x256x14.onnx': mlp,
  'wrong-output-4x5.onnx': wrongOutput,
  'broken.onnx': broken,
  'reshape-by-input.onnx': reshapeByInput,
  'external-data.onnx': externalData,
  'arm-1x7.onnx': arm,
  'double-any-width.onnx': doubleAnyWidth,
  'huge-input.onnx': hugeInput,
  'loop-forever.onnx': loopForever,
  'allocate-huge.onnx': allocateHuge,
};
for (const [name, bytes] of Object.entries(files)) {
  await writeFile(new URL(name, fixtures), bytes);
  console.log(`${name}: ${bytes.length} bytes`);
}
