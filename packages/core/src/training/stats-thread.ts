import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DatasetStatsAccumulator, type DatasetStatsJson } from '@kura/formats';
import type { NpyDtype } from './npy-writer.js';

/** Built code runs in the thread (tests run the sources): the repository's dist/ copy. */
const codeRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const workerScript = join(codeRoot, 'packages/core/dist/training/stats-thread.worker.js');
/** Rows posted but not yet added; past this, `add` waits for the thread (memory stays bounded). */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

export type StatsThreadRequest =
  { kind: 'rows'; name: string; components: number; dtype: NpyDtype; buffer: ArrayBuffer } | { kind: 'finish' };
export type StatsThreadReply =
  { kind: 'added'; bytes: number } | { kind: 'stats'; json: DatasetStatsJson } | { kind: 'error'; message: string };

/**
 * A training set's numeric statistics, accumulated on a thread of their own: the quantile sketches
 * cost about as much as decoding the shards, and on two cores they run beside it rather than after.
 * Rows are copied to the thread (the caller may reuse its buffer at once).
 */
export class StatsThread {
  private pendingBytes = 0;
  private json: DatasetStatsJson | undefined;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: StatsThreadReply) => {
      if (reply.kind === 'added') this.pendingBytes -= reply.bytes;
      else if (reply.kind === 'stats') this.json = reply.json;
      else this.failure ??= new Error(`the training set's statistics failed: ${reply.message}`);
      this.wake?.();
    });
    worker.on('error', (error) => {
      this.failure ??= error;
      this.wake?.();
    });
    worker.on('exit', (code) => {
      this.failure ??= new Error(`the statistics thread ended (exit ${code})`);
      this.wake?.();
    });
  }

  static start(): StatsThread {
    return new StatsThread(new Worker(workerScript));
  }

  /** Adds rows of a numeric feature (`bytes`: whole rows of `components` values of `dtype`). */
  async add(name: string, components: number, dtype: NpyDtype, bytes: Uint8Array): Promise<void> {
    // A copy of exactly these bytes (a Buffer's slice() would share them): the thread owns it.
    const buffer = new Uint8Array(bytes).buffer;
    this.pendingBytes += buffer.byteLength;
    this.worker.postMessage({ kind: 'rows', name, components, dtype, buffer } satisfies StatsThreadRequest, [buffer]);
    await this.until(() => this.pendingBytes <= MAX_PENDING_BYTES);
  }

  /** The statistics of every row added, as an accumulator (media features are the caller's to add); ends the thread. */
  async finish(): Promise<DatasetStatsAccumulator> {
    this.worker.postMessage({ kind: 'finish' } satisfies StatsThreadRequest);
    await this.until(() => this.json !== undefined);
    await this.stop();
    return DatasetStatsAccumulator.fromJSON(this.json!);
  }

  async stop(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private async until(done: () => boolean): Promise<void> {
    while (!done() && !this.failure) await new Promise<void>((wake) => (this.wake = wake));
    this.wake = undefined;
    if (this.failure) throw this.failure;
  }
}
