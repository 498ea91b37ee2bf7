// Camera frames that follow the player: encoded images drawn on a canvas from decoded ImageBitmaps
// (a bounded cache, prefetching ahead while playing), and mp4 videos seeked to the step's time.
import { storedKey } from '../api';
import type { ImageTrack, VideoTrack } from './load';
import type { Player } from './player';

/** Decoded frames kept per camera: ~1 s ahead and behind at 30 fps, and what scrubbing revisits. */
const BITMAPS_KEPT = 120;
const PREFETCH = 6;

export class ImageFrames {
  private readonly bitmaps = new Map<number, Promise<ImageBitmap | null>>();
  private shown = -1;
  private wanted = -1;
  private readonly context: CanvasRenderingContext2D | null;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly track: ImageTrack,
    private readonly player: Player,
  ) {
    this.context = canvas.getContext('2d');
  }

  show(step: number): void {
    this.wanted = step;
    const bitmap = this.bitmap(step);
    void bitmap.then((image) => {
      // A newer step may have been asked for while this one decoded.
      if (this.wanted !== step || !image || !this.context) return;
      if (this.canvas.width !== image.width || this.canvas.height !== image.height) {
        this.canvas.width = image.width;
        this.canvas.height = image.height;
      }
      this.context.drawImage(image, 0, 0);
      this.shown = step;
      this.canvas.dataset.step = String(step);
    });
    const ahead = this.player.playing ? PREFETCH : 2;
    for (let next = step + 1; next <= step + ahead && next < this.track.frames.length; next++) void this.bitmap(next);
  }

  get shownStep(): number {
    return this.shown;
  }

  dispose(): void {
    for (const bitmap of this.bitmaps.values()) void bitmap.then((image) => image?.close());
    this.bitmaps.clear();
  }

  private bitmap(step: number): Promise<ImageBitmap | null> {
    const cached = this.bitmaps.get(step);
    if (cached) {
      // Most recently used last: the map's order is the eviction order.
      this.bitmaps.delete(step);
      this.bitmaps.set(step, cached);
      return cached;
    }
    const blob = this.track.frames[step];
    const decoded = blob ? createImageBitmap(blob).catch(() => null) : Promise.resolve(null);
    this.bitmaps.set(step, decoded);
    while (this.bitmaps.size > BITMAPS_KEPT) {
      const [oldest, evicted] = this.bitmaps.entries().next().value!;
      this.bitmaps.delete(oldest);
      void evicted.then((image) => image?.close());
    }
    return decoded;
  }
}

/**
 * A video feature: the episode's mp4, seeked to the step's frame time. While the player plays, the
 * video plays along and is only corrected when it drifts; paused, it is seeked exactly.
 */
export class VideoFrames {
  private objectUrl: string | null = null;

  constructor(
    private readonly video: HTMLVideoElement,
    private readonly track: VideoTrack,
    private readonly player: Player,
  ) {}

  /**
   * Without a key, the element streams the file itself (HTTP Range, so seeking fetches only what it
   * needs). A `<video>` cannot send an Authorization header, so with a key the file is fetched once
   * and played from a blob: URL.
   */
  async load(signal: AbortSignal): Promise<void> {
    const key = storedKey();
    this.video.muted = true;
    this.video.preload = 'auto';
    if (!key) {
      this.video.src = this.track.url;
    } else {
      const response = await fetch(this.track.url, { headers: { Authorization: `Bearer ${key}` }, signal });
      if (!response.ok) throw new Error(`the video could not be fetched: HTTP ${response.status}`);
      this.objectUrl = URL.createObjectURL(await response.blob());
      this.video.src = this.objectUrl;
    }
    this.show(this.player.step);
  }

  show(step: number): void {
    const time = this.track.times[step];
    if (time === undefined || !Number.isFinite(time)) return;
    // Aim inside the frame rather than at its edge, so the decoder lands on this frame and not the one before.
    const target = time + 0.001;
    if (this.player.playing) {
      if (this.video.paused) void this.video.play().catch(() => undefined);
      if (Math.abs(this.video.currentTime - target) > 0.25) this.video.currentTime = target;
    } else {
      if (!this.video.paused) this.video.pause();
      if (Math.abs(this.video.currentTime - target) > 0.0005) this.video.currentTime = target;
    }
    this.video.dataset.step = String(step);
  }

  setPlaying(playing: boolean): void {
    if (playing) void this.video.play().catch(() => undefined);
    else {
      this.video.pause();
      this.show(this.player.step);
    }
  }

  dispose(): void {
    this.video.pause();
    this.video.removeAttribute('src');
    this.video.load();
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
  }
}
