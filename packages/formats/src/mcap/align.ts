import type { ImportedEpisode } from '../importer.js';

/** A sample of one feature: its time (ns) and its values (numbers, or an encoded image). */
export interface Sample {
  time: bigint;
  value: Float32Array | Uint8Array;
}

export interface AlignedFeature {
  name: string;
  kind: 'numeric' | 'image';
  /** Numbers per step (numeric features). */
  size: number;
  maxAgeNs: bigint;
}

/** Per feature of an episode: samples seen, ticks it dropped (too old), the oldest sample a kept step used. */
export interface SyncReport {
  leadingTicksSkipped: number;
  features: Record<string, { samples: number; ticksDropped: number; maxAgeS: number }>;
}

/**
 * Turns time-stamped samples of several topics into steps on one clock: at each tick, every
 * feature's latest sample at or before it, no older than its `maxAge`. Ticks before every feature
 * has a sample are skipped; a tick where a feature's latest sample is too old is dropped and
 * counted. Samples must arrive in time order per feature (a late one is put in its place); ticks
 * are emitted once the clock of arrivals (`advance`) has passed them.
 */
export class Aligner {
  private readonly buffers: Sample[][];
  private readonly ticks: bigint[] = [];
  private nextRateTick: bigint | undefined;
  private tickIndex = 0n;
  private firstSampleTime: bigint | undefined;
  private readonly values: number[][];
  private readonly frames: Uint8Array[][];
  private readonly times: bigint[] = [];
  private readonly tasks: Array<string | null> = [];
  private latestTask: string | null = null;
  private report: SyncReport;

  constructor(
    private readonly features: readonly AlignedFeature[],
    /** Ticks every 1/rateHz from the first sample; without it, `tick()` gives them (a reference topic). */
    private readonly rateHz: number | undefined,
  ) {
    this.buffers = features.map(() => []);
    this.values = features.map(() => []);
    this.frames = features.map(() => []);
    this.report = this.emptyReport();
  }

  get steps(): number {
    return this.times.length;
  }

  /** A sample of feature `index`. */
  add(index: number, sample: Sample): void {
    const buffer = this.buffers[index]!;
    let at = buffer.length;
    while (at > 0 && buffer[at - 1]!.time > sample.time) at--;
    buffer.splice(at, 0, sample);
    this.report.features[this.features[index]!.name]!.samples++;
    if (this.firstSampleTime === undefined || sample.time < this.firstSampleTime) this.firstSampleTime = sample.time;
    if (this.rateHz !== undefined && this.nextRateTick === undefined) this.nextRateTick = this.firstSampleTime;
  }

  /** A tick of a reference clock. */
  tick(time: bigint): void {
    this.ticks.push(time);
  }

  /** The task from now on (a task topic's message). */
  setTask(task: string): void {
    this.latestTask = task;
  }

  /** Emits every tick at or before `watermark` (no sample at or before a tick can arrive any more). */
  advance(watermark: bigint): void {
    if (this.rateHz !== undefined) {
      while (this.nextRateTick !== undefined && this.nextRateTick <= watermark) {
        this.emit(this.nextRateTick);
        this.tickIndex++;
        // Counted from the first sample each time, so no rounding accumulates.
        this.nextRateTick = this.firstSampleTime! + BigInt(Math.round((Number(this.tickIndex) * 1e9) / this.rateHz));
      }
      return;
    }
    while (this.ticks.length > 0 && this.ticks[0]! <= watermark) this.emit(this.ticks.shift()!);
  }

  /** Ends the episode: its steps (absent when it has none) and its sync report; the next samples start a new one. */
  finish(
    identity: Pick<ImportedEpisode, 'sourceId' | 'sourceEpisode' | 'file'>,
    fixedTask: string | undefined,
  ): { episode: ImportedEpisode | undefined; report: SyncReport } {
    const report = this.report;
    let episode: ImportedEpisode | undefined;
    const length = this.times.length;
    if (length > 0) {
      const start = this.times[0]!;
      const features: ImportedEpisode['features'] = {};
      for (const [index, feature] of this.features.entries()) {
        features[feature.name] =
          feature.kind === 'image'
            ? { kind: 'image', frames: [...this.frames[index]!] }
            : { kind: 'tensor', values: Float32Array.from(this.values[index]!) };
      }
      episode = {
        ...identity,
        length,
        timestamp: Float64Array.from(this.times, (time) => Number(time - start) / 1e9),
        ...taskOf(this.tasks, fixedTask),
        metadata: { sync: report },
        features,
      };
    }
    this.buffers.forEach((buffer) => (buffer.length = 0));
    this.values.forEach((values) => (values.length = 0));
    this.frames.forEach((frames) => (frames.length = 0));
    this.times.length = 0;
    this.tasks.length = 0;
    this.ticks.length = 0;
    this.nextRateTick = undefined;
    this.tickIndex = 0n;
    this.firstSampleTime = undefined;
    this.report = this.emptyReport();
    return { episode, report };
  }

  private emit(tick: bigint): void {
    const chosen: Array<Sample | undefined> = [];
    let stale: number | undefined;
    for (const [index, feature] of this.features.entries()) {
      const buffer = this.buffers[index]!;
      let at = buffer.length - 1;
      while (at >= 0 && buffer[at]!.time > tick) at--;
      if (at < 0) {
        // No sample yet: a leading tick, skipped (after the first step each buffer keeps its latest).
        if (this.times.length === 0) {
          this.report.leadingTicksSkipped++;
          return;
        }
        stale ??= index;
        chosen.push(undefined);
        continue;
      }
      // Older samples can no longer be anyone's latest.
      if (at > 0) buffer.splice(0, at);
      const sample = buffer[0]!;
      if (tick - sample.time > feature.maxAgeNs) stale ??= index;
      chosen.push(sample);
    }
    if (stale !== undefined) {
      this.report.features[this.features[stale]!.name]!.ticksDropped++;
      return;
    }
    for (const [index, feature] of this.features.entries()) {
      const sample = chosen[index]!;
      const age = Number(tick - sample.time) / 1e9;
      const entry = this.report.features[feature.name]!;
      if (age > entry.maxAgeS) entry.maxAgeS = age;
      if (feature.kind === 'image') this.frames[index]!.push(sample.value as Uint8Array);
      else for (const value of sample.value as Float32Array) this.values[index]!.push(value);
    }
    this.times.push(tick);
    this.tasks.push(this.latestTask);
  }

  private emptyReport(): SyncReport {
    return {
      leadingTicksSkipped: 0,
      features: Object.fromEntries(this.features.map((feature) => [feature.name, { samples: 0, ticksDropped: 0, maxAgeS: 0 }])),
    };
  }
}

/** The episode's task: the mapping's, or per step from a task topic (steps before its first message take that first one). */
function taskOf(tasks: Array<string | null>, fixed: string | undefined): Pick<ImportedEpisode, 'task' | 'stepTasks'> {
  if (fixed !== undefined) return { task: fixed };
  const first = tasks.find((task) => task !== null);
  if (first === undefined) return {};
  const stepTasks = tasks.map((task) => task ?? first);
  return stepTasks.every((task) => task === first) ? { task: first } : { stepTasks };
}
