// The viewer's client for Kura's HTTP API (docs/api.md): JSON in and out, the key from the
// header field sent as `Authorization: Bearer`, and errors kept with the API's code and message.

import type {
  DatasetEarningsView,
  DatasetTermsHistoryView,
  DatasetView,
  EpisodeView,
  ErrorLocation,
  EvaluationView,
  FeatureSpec as Spec,
  LeaderboardEntry as LeaderboardView,
  Page as ListPage,
  PolicyView,
  RobotView,
  SliceView,
  TrainerView,
  TrainingMetricsView,
  TrainingView,
  UploadView,
} from '@kura/schema';

const KEY_STORAGE = 'kura.apiKey';

export function storedKey(): string | null {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function storeKey(key: string | null): void {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

/** A failed call: the HTTP status (0 when the server could not be reached) and the API's error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = storedKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

/** A fetch with the key; network failures become ApiError(0, 'NETWORK_ERROR'). */
export async function request(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const { json, ...rest } = init;
  let response: Response;
  try {
    response = await fetch(path, {
      ...rest,
      headers: headers(json === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    });
  } catch (error) {
    throw new ApiError(0, 'NETWORK_ERROR', `could not reach the server: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** GET (or another method with `json`) a JSON reply. */
export async function api<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const response = await request(path, init);
  // The API's replies are the parsed boundary: their shapes are API.md's.
  return (await response.json()) as T;
}

async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    if (body.error && typeof body.error.code === 'string' && typeof body.error.message === 'string') {
      const details = typeof body.error.details === 'object' && body.error.details !== null ? body.error.details : undefined;
      return new ApiError(response.status, body.error.code, body.error.message, details as Record<string, unknown> | undefined);
    }
  } catch {
    // Not the API's JSON error body (a proxy's page, say): keep the status and the start of the text.
  }
  return new ApiError(response.status, `HTTP_${response.status}`, text.slice(0, 300) || response.statusText);
}

/** Every page of a list endpoint, up to `max` items. */
export async function allPages<T>(path: string, max = 2000): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const separator = path.includes('?') ? '&' : '?';
    const page: Page<T> = await api<Page<T>>(`${path}${separator}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && items.length < max);
  return items;
}

export const enc = encodeURIComponent;

// Reply shapes: the SDK's, which are the API's own request schemas and reply views (types only:
// nothing of the SDK is bundled).
export type Page<T> = ListPage<T>;
export type FeatureSpec = Spec;
export type Feature = Spec[string];
export type Names = NonNullable<Feature['names']>;
export type Dataset = DatasetView;
export type Terms = DatasetTermsHistoryView;
export type Earnings = DatasetEarningsView;
export type Robot = RobotView;
export type Episode = EpisodeView;
export type Location = ErrorLocation;
export type Upload = UploadView;
export type Issue = UploadView['errors'][number];
export type Slice = SliceView;
export type LeaderboardEntry = LeaderboardView;
export type Metrics = LeaderboardView['metrics'];
export type Policy = PolicyView;
export type Evaluation = EvaluationView;
export type Trainer = TrainerView;
export type Training = TrainingView;
export type TrainingMetrics = TrainingMetricsView;

export interface FeatureStats {
  count: number;
  min?: number[] | null;
  max?: number[] | null;
  mean?: number[] | null;
  std?: number[] | null;
  q01?: number[] | null;
  q10?: number[] | null;
  q50?: number[] | null;
  q90?: number[] | null;
  q99?: number[] | null;
}

export interface Stats {
  version: number;
  scope: 'all' | 'sample';
  features: Record<string, FeatureStats>;
}
