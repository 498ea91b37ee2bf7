// The viewer's client for Kura's HTTP API (../../shared/API.md): JSON in and out, the key from the
// header field sent as `Authorization: Bearer`, and errors kept with the API's code and message.

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

// Reply shapes (API.md and the README's changelog), as far as the viewer reads them.

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export type Names = string[] | string[][] | Record<string, string[]>;

export interface Feature {
  dtype: string;
  shape: number[];
  names?: Names;
  encoding?: string;
  description?: string;
}

export type FeatureSpec = Record<string, Feature>;

export interface Dataset {
  id: string;
  name: string;
  robotId: string;
  access: 'public' | 'sample' | 'private';
  license: string | null;
  description: string | null;
  features: FeatureSpec | null;
  latestVersion: number;
  episodeCount: number;
  stepCount: number;
  createdAt: string;
}

export interface Robot {
  id: string;
  name: string;
  robotType: string;
  controlFrequencyHz: number;
  actionSpace: string;
  stateSpace: string | null;
  jointNames: string[];
  cameras: unknown[];
  bodyModel: {
    format: string;
    robotName: string;
    joints: Array<{ name: string; type: string; parent?: string; child?: string; limits?: Record<string, number> | null }>;
    links: string[];
  } | null;
}

export interface Episode {
  episodeIndex: number;
  length: number;
  task: string | null;
  success: boolean | null;
  uploadId: string;
  version: number;
  heldOut: boolean;
  publicSample: boolean;
}

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

export interface Location {
  file?: string;
  episode?: number;
  step?: number;
  field?: string;
  line?: number;
}

export interface Issue {
  code: string;
  message: string;
  location?: Location;
}

export interface Upload {
  id: string;
  status: string;
  progress: number;
  format: string | null;
  fileName: string | null;
  bytes: number;
  episodeCount: number | null;
  stepCount: number | null;
  version: number | null;
  errors: Issue[];
  warnings: Issue[];
  createdAt: string;
  finishedAt: string | null;
}

export interface Slice {
  id: string;
  episodeCount: number;
  stepCount: number;
}

export interface Metrics {
  actionMse: number;
  actionMae: number;
  perDimension: number[];
  stepsEvaluated: number;
  episodesEvaluated: number;
}

export interface LeaderboardEntry {
  rank: number;
  policyId: string;
  name: string | null;
  version: number | null;
  evaluationId: string;
  datasetVersion: number;
  metrics: Metrics;
  evaluatedAt: string;
}

export interface Policy {
  id: string;
  name: string | null;
  version: number | null;
  status: 'validating' | 'ready' | 'rejected';
  runtime: string | null;
  access: 'public' | 'private';
  manifest: unknown;
  errors: Issue[];
  bytes: number;
  sha256: string;
  createdAt: string;
}

export interface Evaluation {
  id: string;
  policyId: string;
  datasetId: string;
  version: number;
  status: 'queued' | 'running' | 'completed' | 'failed';
  metrics: Metrics | null;
  timing: { latencyMsP50: number; latencyMsP99: number } | null;
  error: Issue | null;
  createdAt: string;
  finishedAt: string | null;
}
