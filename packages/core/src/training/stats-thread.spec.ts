import { describe, expect, it } from '@jest/globals';
import { DatasetStatsAccumulator } from '@kura/formats';
import { StatsThread } from './stats-thread.js';

describe('statistics on a thread of their own', () => {
  it('gives the statistics the accumulator gives in-process for the same rows', async () => {
    const thread = StatsThread.start();
    const direct = new DatasetStatsAccumulator();
    const state = Float32Array.from({ length: 30_000 * 7 }, (_, index) => Math.sin(index) * 3 + (index % 7));
    const gripper = Int32Array.from({ length: 30_000 }, (_, index) => index % 3);
    direct.numeric('gripper', 1).addColumn(gripper, 30_000);
    for (let row = 0; row < 30_000; row += 1_234) {
      const end = Math.min(30_000, row + 1_234);
      await thread.add('observation.state', 7, 'float32', new Uint8Array(state.buffer, row * 28, (end - row) * 28));
      direct.numeric('observation.state', 7).addColumn(state.subarray(row * 7, end * 7), end - row);
    }
    await thread.add('gripper', 1, 'int32', new Uint8Array(gripper.buffer));
    const summary = await thread.finish();
    expect(summary.summary()).toEqual(direct.summary());
  });

  it('fails the run with the reason when rows cannot be counted', async () => {
    const thread = StatsThread.start();
    await thread.add('action', 2, 'float64', new Uint8Array(new Float64Array([1, Number.NaN]).buffer)).catch(() => undefined);
    await expect(thread.finish()).rejects.toThrow(/statistics failed: .*finite/);
    await thread.stop();
  });
});
