// Jest's node environment with every typed array constructor taken from Node's own realm, as Jest
// already does for ArrayBuffer and Uint8Array. Native addons (onnxruntime-node, isolated-vm) create
// typed arrays in Node's realm, and onnxruntime's Tensor class, evaluated in the test's realm, checks
// them with `instanceof Float32Array`: without this every model call fails under Jest, and only there.
// Used by runtimes.spec.ts through its @jest-environment docblock.
import { TestEnvironment } from 'jest-environment-node';

const typedArrays = [
  'Int8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'DataView',
];

export default class NodeTypedArraysEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of typedArrays) this.global[name] = globalThis[name];
  }
}
