import { shortFloat32 } from '@kura/formats';
import type { FeatureSpec, PolicyCallContext, PolicyManifest, PolicyObservation } from '@kura/schema';
import { normalize, unnormalize, type PolicyNormalization } from '../policies/normalization.js';
import type { PolicyRuntime } from '../policies/runtimes/runtime-api.js';
import { invalidObservation } from './inference.errors.js';

// An observation as a caller sends it, checked against a policy's manifest: shared by the server's
// act and sessions and by the edge runner (@kura/edge), so both refuse the same inputs the same way.

/** An observation as JSON carries it: numbers (nested arrays allowed), or an image as base64 of its encoded bytes. */
export type JsonObservation = Record<string, unknown>;

/** The observation's features as number arrays (flattened) or image bytes; refuses missing, unknown and malformed ones. */
export function parseObservation(
  manifest: PolicyManifest,
  features: FeatureSpec | undefined,
  observation: JsonObservation,
): Record<string, number[] | Uint8Array> {
  const parsed: Record<string, number[] | Uint8Array> = {};
  for (const key of Object.keys(observation)) {
    if (!manifest.observation.includes(key))
      throw invalidObservation(
        `observation.${key}`,
        `the policy does not observe "${key}" (it observes ${manifest.observation.join(', ')})`,
      );
  }
  for (const name of manifest.observation) {
    const field = `observation.${name}`;
    const value = observation[name];
    const feature = features?.[name];
    if (value === undefined) throw invalidObservation(field, 'missing');
    if (typeof value === 'string') {
      if (feature && feature.dtype !== 'image') throw invalidObservation(field, `a ${feature.dtype} feature takes numbers, not an image`);
      const bytes = Buffer.from(value, 'base64');
      const isJpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
      const isPng = bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      if (!isJpeg && !isPng) throw invalidObservation(field, 'an image is the base64 of its JPEG or PNG bytes');
      parsed[name] = new Uint8Array(bytes);
      continue;
    }
    if (feature?.dtype === 'image') throw invalidObservation(field, 'an image feature takes the base64 of the encoded image');
    const numbers = flatten(value, field);
    const shape = feature?.shape ?? manifest.observationShapes?.[name];
    const expected = shape?.reduce((product, dimension) => product * dimension, 1);
    if (expected !== undefined && numbers.length !== expected) {
      throw invalidObservation(field, `has ${numbers.length} numbers, expected ${expected} (shape [${shape!.join(', ')}])`);
    }
    parsed[name] = numbers;
  }
  return parsed;
}

/** Deepest nesting of an observation's arrays: a feature's rank is at most 8. */
const MAX_OBSERVATION_DEPTH = 8;

function flatten(value: unknown, field: string): number[] {
  const numbers: number[] = [];
  const walk = (item: unknown, path: string, depth: number): void => {
    if (typeof item === 'number') {
      if (!Number.isFinite(item)) throw invalidObservation(path, 'numbers must be finite');
      numbers.push(item);
    } else if (Array.isArray(item)) {
      // Checked before going deeper: a hostile nesting must not exhaust the stack.
      if (depth >= MAX_OBSERVATION_DEPTH) throw invalidObservation(path, `arrays may nest at most ${MAX_OBSERVATION_DEPTH} levels deep`);
      item.forEach((inner, index) => walk(inner, `${path}.${index}`, depth + 1));
    } else throw invalidObservation(path, 'must be a number array (nested arrays allowed) or a base64 image');
  };
  if (!Array.isArray(value)) throw invalidObservation(field, 'must be a number array (nested arrays allowed) or a base64 image');
  walk(value, field, 0);
  return numbers;
}

/** [D] → D numbers; [H, D] → H arrays of D. */
export function shapeAction(values: number[], manifest: PolicyManifest): number[] | number[][] {
  const shape = manifest.action.shape;
  if (shape.length === 1) return values;
  const [rows, columns] = shape;
  return Array.from({ length: rows }, (_, row) => values.slice(row * columns, (row + 1) * columns));
}

/**
 * One call of a loaded policy on a parsed observation: normalizes it, calls the runtime, maps the
 * action back to the dataset's units and shapes it. The server's act and the edge runner both call this.
 */
export async function actOnce(
  runtime: PolicyRuntime,
  manifest: PolicyManifest,
  normalization: PolicyNormalization | undefined,
  parsed: Record<string, number[] | Uint8Array>,
  context: PolicyCallContext,
): Promise<{ action: number[] | number[][]; latencyMs: number }> {
  const observation: PolicyObservation = {};
  for (const [name, value] of Object.entries(parsed))
    observation[name] = value instanceof Uint8Array ? value : normalize(value, normalization, name);
  const started = performance.now();
  const output = await runtime.act(observation, context);
  const latencyMs = Math.round((performance.now() - started) * 1000) / 1000;
  // float32 out of the sandbox: written with the fewest digits that read back the same.
  const action = unnormalize(Array.from(output, shortFloat32), normalization);
  return { action: shapeAction(action, manifest), latencyMs };
}
