// The episode's clock: the current step, play/pause at the recorded pace, and who follows it. Plots,
// frames and the scrubber listen to it directly — nothing re-renders through Preact per step.

export type StepListener = (step: number) => void;

export class Player {
  step = 0;
  playing = false;
  private readonly stepListeners = new Set<StepListener>();
  private readonly playListeners = new Set<(playing: boolean) => void>();
  private frame = 0;
  private clockStart = 0;
  private timeStart = 0;
  /** Seconds per step when the timestamps do not advance (a fallback pace). */
  private readonly uniform: boolean;

  constructor(
    private readonly timestamps: Float64Array,
    private readonly fallbackHz = 30,
  ) {
    const first = timestamps[0] ?? 0;
    const last = timestamps[timestamps.length - 1] ?? 0;
    this.uniform = !(last > first);
  }

  get length(): number {
    return this.timestamps.length;
  }

  /** Time of a step in seconds (its timestamp, or step / fallbackHz when the timestamps do not advance). */
  timeOf(step: number): number {
    return this.uniform ? step / this.fallbackHz : (this.timestamps[step] ?? 0);
  }

  onStep(listener: StepListener): () => void {
    this.stepListeners.add(listener);
    return () => this.stepListeners.delete(listener);
  }

  onPlay(listener: (playing: boolean) => void): () => void {
    this.playListeners.add(listener);
    return () => this.playListeners.delete(listener);
  }

  seek(step: number): void {
    const clamped = Math.max(0, Math.min(this.length - 1, Math.round(step)));
    if (this.playing) {
      // Keep playing from the new place.
      this.clockStart = performance.now();
      this.timeStart = this.timeOf(clamped);
    }
    this.setStep(clamped);
  }

  toggle(): void {
    if (this.playing) this.pause();
    else this.play();
  }

  play(): void {
    if (this.playing || this.length < 2) return;
    if (this.step >= this.length - 1) this.setStep(0);
    this.playing = true;
    this.clockStart = performance.now();
    this.timeStart = this.timeOf(this.step);
    for (const listener of this.playListeners) listener(true);
    this.frame = requestAnimationFrame(this.tick);
  }

  pause(): void {
    if (!this.playing) return;
    this.playing = false;
    cancelAnimationFrame(this.frame);
    for (const listener of this.playListeners) listener(false);
  }

  dispose(): void {
    this.pause();
    this.stepListeners.clear();
    this.playListeners.clear();
  }

  private readonly tick = (now: number): void => {
    if (!this.playing) return;
    const time = this.timeStart + (now - this.clockStart) / 1000;
    const step = this.stepAt(time);
    if (step !== this.step) this.setStep(step);
    if (step >= this.length - 1) {
      this.pause();
      return;
    }
    this.frame = requestAnimationFrame(this.tick);
  };

  /** The last step whose time is at or before `time` (binary search: timestamps never go back). */
  private stepAt(time: number): number {
    let low = 0;
    let high = this.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.timeOf(middle) <= time) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  private setStep(step: number): void {
    if (step === this.step) return;
    this.step = step;
    for (const listener of this.stepListeners) listener(step);
  }
}
