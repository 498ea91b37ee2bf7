import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, storedKey } from './api';

export type Loaded<T> = { state: 'loading' } | { state: 'ok'; value: T } | { state: 'error'; error: ApiError };

export function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  return new ApiError(0, 'VIEWER_ERROR', error instanceof Error ? error.message : String(error));
}

/** Runs `load` when `deps` change; a late answer for old deps is dropped. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: 'loading' });
  useEffect(() => {
    let current = true;
    setLoaded({ state: 'loading' });
    load().then(
      (value) => current && setLoaded({ state: 'ok', value }),
      (error: unknown) => current && setLoaded({ state: 'error', error: asApiError(error) }),
    );
    return () => {
      current = false;
    };
    // The caller lists what `load` depends on.
  }, deps);
  return loaded;
}

/**
 * Like useLoad, then loads again every `intervalMs` until `settled(value)` (a run that ended, say). A
 * refresh keeps the last value on screen; a failed one is reported beside it and retried, so a
 * moment without the server does not blank a page that was showing a live run.
 */
export function usePolled<T>(
  load: () => Promise<T>,
  settled: (value: T) => boolean,
  intervalMs: number,
  deps: unknown[],
): { loaded: Loaded<T>; refreshError: ApiError | null } {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: 'loading' });
  const [refreshError, setRefreshError] = useState<ApiError | null>(null);
  useEffect(() => {
    let current = true;
    let shown = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const again = () => {
      timer = setTimeout(() => void poll(), intervalMs);
    };
    setLoaded({ state: 'loading' });
    setRefreshError(null);
    const poll = async () => {
      try {
        const value = await load();
        if (!current) return;
        shown = true;
        setLoaded({ state: 'ok', value });
        setRefreshError(null);
        if (!settled(value)) again();
      } catch (error) {
        if (!current) return;
        if (!shown) {
          setLoaded({ state: 'error', error: asApiError(error) });
          return;
        }
        setRefreshError(asApiError(error));
        again();
      }
    };
    void poll();
    return () => {
      current = false;
      clearTimeout(timer);
    };
    // The caller lists what `load` depends on.
  }, deps);
  return { loaded, refreshError };
}

/** What a caller can do about a failure; it depends on whether a key is in use. */
function hintFor(status: number): string | undefined {
  const keyed = storedKey() !== null;
  switch (status) {
    case 0:
      return 'The API could not be reached. Is Kura running?';
    case 401:
      return keyed
        ? 'The API key in use is not valid (revoked?): forget it and enter another.'
        : 'This needs an API key: enter one in the key field at the top right.';
    case 403:
      return keyed
        ? 'The API key in use does not have the rights this needs.'
        : 'This needs an API key with the rights to it: enter one at the top right.';
    case 404:
      return keyed
        ? 'It does not exist, or it is private and the API key in use may not see it.'
        : 'It does not exist, or it is private: a key of its owner, a grantee or an admin may see it (enter one at the top right).';
    case 422:
      return 'The API could not serve this request as asked.';
    default:
      return undefined;
  }
}

/** A whole page for a failure: the status, the API's error code and message, and what to do. */
export function ErrorPage(props: { error: ApiError; title?: string }) {
  const { error } = props;
  return (
    <section class="error-page" data-testid="error-page">
      <h1>{props.title ?? (error.status ? `Error ${error.status}` : 'Error')}</h1>
      <p class="error-code">
        <code data-testid="error-code">{error.code}</code>
      </p>
      <p class="error-message" data-testid="error-message">
        {error.message}
      </p>
      {hintFor(error.status) ? <p class="hint">{hintFor(error.status)}</p> : null}
      <p>
        <a href="/datasets">← All datasets</a>
      </p>
    </section>
  );
}

/** Loading, error page, or the content. */
export function Loading<T>(props: { loaded: Loaded<T>; children: (value: T) => ComponentChildren; what?: string }) {
  const { loaded } = props;
  if (loaded.state === 'loading') return <p class="loading">Loading{props.what ? ` ${props.what}` : ''}…</p>;
  if (loaded.state === 'error') return <ErrorPage error={loaded.error} />;
  return <>{props.children(loaded.value)}</>;
}

/** A failure inside a page section (the rest of the page still works). */
export function InlineError(props: { error: ApiError; note?: string }) {
  return (
    <div class="inline-error" data-testid="inline-error">
      {props.note ? <p>{props.note}</p> : null}
      <p>
        <code>{props.error.code}</code> {props.error.message}
      </p>
    </div>
  );
}

export const formatNumber = (value: number | null | undefined, digits = 4): string => {
  if (value === null || value === undefined) return '—';
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(digits - 1) : value.toPrecision(digits);
};

export const formatDate = (iso: string | null | undefined): string => (iso ? new Date(iso).toLocaleString() : '—');

export const formatBytes = (bytes: number): string => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
};

export function Badge(props: { kind: string; children: ComponentChildren }) {
  return <span class={`badge badge-${props.kind}`}>{props.children}</span>;
}

/** An evaluation's status badge, with its coded error under it when it failed. */
export function EvaluationStatusCell(props: { status: string; error: { code: string; message: string } | null | undefined }) {
  return (
    <td>
      <Badge kind={props.status}>{props.status}</Badge>
      {props.error ? (
        <div class="location">
          <code>{props.error.code}</code> {props.error.message}
        </div>
      ) : null}
    </td>
  );
}
