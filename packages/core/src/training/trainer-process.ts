import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startJailed, type JailExit, type JailLevel } from '@kura/jail';
import type { TrainingResources } from '@kura/schema';
import type { GpuDevices } from './gpu-devices.js';
import { MetricSeries, RunLog } from './run-output.js';

/** Where a trainer sees its parts (bubblewrap); at level `unsafe-none` it is told their host paths instead. */
export const TRAINER_PATHS = { code: '/code', data: '/data', out: '/out' } as const;

export interface TrainerProcessParams {
  level: JailLevel;
  interpreter: string;
  entry: string;
  codeDir: string;
  dataDir: string;
  outDir: string;
  resources: TrainingResources;
  /** Processes and threads of the run (torch starts one per core and more). */
  processes: number;
  /** What the run may leave in /out: bytes and files. */
  output: { maxBytes: number; maxFiles: number };
  guarded: boolean;
  env?: Record<string, string>;
  signal: AbortSignal;
  /** GPUs given to the run (KURA_TRAINING_GPUS): their device nodes are bound into the jail. */
  gpus?: GpuDevices | undefined;
  /** Called about once a second with the metrics so far, to persist them. */
  onProgress?: (metrics: MetricSeries) => void;
}

export type TrainerOutcome = JailExit['outcome'] | 'cancelled' | 'output-too-large';

export interface TrainerProcessResult {
  outcome: TrainerOutcome;
  exit: JailExit;
  metrics: MetricSeries;
  log: string;
}

/** How often /out is measured while the trainer runs: the bound on how far past its cap it can write. */
const OUTPUT_WATCH_MS = 250;

/**
 * Runs a trainer in the jail: the bundle read-only at /code (its working directory), the training
 * set read-only at /data, /out writable; no network, its own user, the run's CPU, memory and wall
 * clock limits. Its output becomes the run's metrics and log; /out is measured four times a second
 * and the trainer killed when it holds more than it may.
 */
export async function runTrainerProcess(params: TrainerProcessParams): Promise<TrainerProcessResult> {
  const metrics = new MetricSeries();
  const log = new RunLog(params.guarded, metrics);
  const bwrap = params.level === 'bwrap';
  const paths = bwrap ? TRAINER_PATHS : { code: params.codeDir, data: params.dataDir, out: params.outDir };
  const threads = String(Math.max(1, Math.min(4, params.processes >> 3)));
  const child = startJailed({
    level: params.level,
    command: [params.interpreter, '-I', '-B', join(paths.code, params.entry)],
    channel: 'lines',
    separateUser: true,
    mounts: [
      { path: params.codeDir, at: TRAINER_PATHS.code },
      { path: params.dataDir, at: TRAINER_PATHS.data },
      { path: params.outDir, at: TRAINER_PATHS.out, writable: true },
      ...(params.gpus?.paths ?? []).map((path) => ({ path, device: true })),
    ],
    cwd: paths.code,
    env: {
      KURA_DATA_DIR: paths.data,
      KURA_OUT_DIR: paths.out,
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONUNBUFFERED: '1',
      OMP_NUM_THREADS: threads,
      OPENBLAS_NUM_THREADS: threads,
      MKL_NUM_THREADS: threads,
      KURA_GPU_COUNT: String(params.gpus?.count ?? 0),
      ...params.env,
    },
    limits: {
      memoryBytes: params.resources.memoryMb * 1024 * 1024,
      cpuSeconds: params.resources.cpuSeconds,
      wallClockMs: params.resources.wallSeconds * 1000,
      fileSizeBytes: params.output.maxBytes,
      maxMessageBytes: 1024,
      openFiles: 1024,
      tmpBytes: 256 * 1024 * 1024,
      processes: params.processes,
    },
    onOutput: (stream, chunk) => log.write(stream, chunk),
  });

  let stoppedFor: TrainerOutcome | undefined;
  const stop = (outcome: TrainerOutcome) => {
    stoppedFor ??= outcome;
    child.kill();
  };
  const onAbort = () => stop('cancelled');
  params.signal.addEventListener('abort', onAbort);
  if (params.signal.aborted) onAbort();
  let progressAt = Date.now();
  let ended = false;
  let wake: () => void = () => undefined;
  const exited = child.exit.then((exit) => {
    ended = true;
    wake();
    return exit;
  });
  const watch = (async () => {
    while (!ended) {
      // The pause ends early when the trainer exits, so the run's end is not held back by it.
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, OUTPUT_WATCH_MS);
      });
      if (ended) break;
      const used = await measure(params.outDir, params.output.maxFiles + 1).catch(() => ({ bytes: 0, files: 0 }));
      if (used.bytes > params.output.maxBytes || used.files > params.output.maxFiles) stop('output-too-large');
      if (params.onProgress && Date.now() - progressAt >= 1000) {
        progressAt = Date.now();
        params.onProgress(metrics);
      }
    }
  })();
  const exit = await exited;
  await watch;
  params.signal.removeEventListener('abort', onAbort);
  return { outcome: stoppedFor ?? exit.outcome, exit, metrics, log: log.finish() };
}

/** Bytes and entries under a folder, without following links; stops counting past `maxFiles`. */
export async function measure(directory: string, maxFiles: number): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  const pending = [directory];
  while (pending.length > 0 && files <= maxFiles) {
    const folder = pending.pop()!;
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      files++;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else bytes += (await lstat(path)).size;
      if (files > maxFiles) break;
    }
  }
  return { bytes, files };
}
