import { it } from '@jest/globals';
import { FeatureStatsAccumulator } from './index.js';
it('t', () => {
  const components = 7, steps = 1_428_572;
  const values = new Float32Array(steps * components);
  let t = performance.now();
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(i) * (1 + (i % components));
  const gen = performance.now() - t;
  t = performance.now();
  const accumulator = new FeatureStatsAccumulator(components);
  for (let step = 0; step < steps; step += 500) {
    const length = Math.min(500, steps - step);
    accumulator.addColumn(values.subarray(step * components, (step + length) * components), length);
  }
  const add = performance.now() - t;
  t = performance.now();
  const f = Float64Array.from(values);
  const copy = performance.now() - t;
  process.stdout.write(`gen ${gen} add ${add} copy ${copy}\n`);
});
