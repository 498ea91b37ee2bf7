import { describe, expect, it } from '@jest/globals';
import { trainingLimits } from '@kura/schema';
import { guardedMessage, MetricSeries, RunLog } from './run-output.js';

const lines = (...text: string[]) => Buffer.from(text.map((line) => `${line}\n`).join(''));

describe("a run's metrics and log", () => {
  it('reads JSON lines of finite numbers as metric points, and nothing else', () => {
    const metrics = new MetricSeries();
    const log = new RunLog(false, metrics);
    log.write(
      'stdout',
      lines('{"step": 10, "loss": 0.5}', 'epoch 1 done', '{"loss": "high"}', '{"step": 20, "loss": 0.25, "lr": 0.001}', '[1, 2]'),
    );
    log.write('stdout', Buffer.from('{"step": 30, "lo'));
    log.write('stdout', Buffer.from('ss": 0.125}\n'));
    expect(metrics.toJSON()).toEqual({
      series: {
        loss: [
          [10, 0.5],
          [20, 0.25],
          [30, 0.125],
        ],
        lr: [[20, 0.001]],
      },
      truncated: false,
    });
    expect(metrics.latest()).toEqual({ loss: 0.125, lr: 0.001 });
    expect(log.finish()).toContain('epoch 1 done');
  });

  it('caps series and points, and says it did', () => {
    const metrics = new MetricSeries();
    const many = Object.fromEntries(Array.from({ length: trainingLimits.maxMetricSeries + 5 }, (_, index) => [`m${index}`, index]));
    metrics.offer(JSON.stringify(many));
    expect(metrics.series.size).toBe(trainingLimits.maxMetricSeries);
    for (let step = 0; step < trainingLimits.maxMetricPoints + 10; step++) metrics.offer(JSON.stringify({ step, m0: step }));
    expect(metrics.series.get('m0')!.length).toBe(trainingLimits.maxMetricPoints);
    expect(metrics.truncated).toBe(true);
  });

  it('keeps the newest output up to the log cap when unguarded', () => {
    const log = new RunLog(false, new MetricSeries());
    const line = 'x'.repeat(1023);
    for (let index = 0; index < (trainingLimits.maxLogBytes / 1024) * 2; index++) log.write('stderr', Buffer.from(`${line}\n`));
    const text = log.finish();
    expect(text.length).toBeLessThanOrEqual(trainingLimits.maxLogBytes + 100);
    expect(text).toMatch(/^\[… \d+ bytes of earlier output cut …\]/);
  });

  it('keeps only metric lines and a short tail of other output when guarded', () => {
    const log = new RunLog(true, new MetricSeries());
    const secret = 'episode data '.repeat(10_000);
    log.write('stdout', lines('{"step": 1, "loss": 2}', secret, 'the end'));
    log.write('stderr', lines('Traceback: boom'));
    const text = log.finish();
    expect(text).toContain('{"step": 1, "loss": 2}');
    expect(text).toContain('Traceback: boom');
    expect(text.length).toBeLessThan(trainingLimits.guardedLogTailBytes + 200);
    expect(guardedMessage('y'.repeat(10_000), true).length).toBeLessThan(trainingLimits.guardedErrorChars + 100);
    expect(guardedMessage('short', true)).toBe('short');
  });

  it('treats an endless line as text, not as a metric or unbounded memory', () => {
    const metrics = new MetricSeries();
    const log = new RunLog(false, metrics);
    for (let index = 0; index < 100; index++) log.write('stdout', Buffer.from(`{"step": ${'1'.repeat(1000)}`));
    expect(metrics.series.size).toBe(0);
    expect(log.finish().length).toBeGreaterThan(90_000);
  });
});
