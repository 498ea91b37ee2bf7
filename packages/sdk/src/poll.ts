import { KuraError } from './errors.js';
import { sleep } from './http.js';

/** Calls `read` until `done` says so, every `intervalMs` (default 500 ms), for at most `timeoutMs` (default 1 h). */
export async function poll<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  options: { intervalMs?: number; timeoutMs?: number; onValue?: (value: T) => void } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 3600_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    options.onValue?.(value);
    if (done(value)) return value;
    if (Date.now() > deadline) throw new KuraError('WAIT_TIMEOUT', `still not done after ${Math.round(timeoutMs / 1000)} s`);
    await sleep(options.intervalMs ?? 500);
  }
}
