// The hostile-input corpus: what a case is, the notation of outcomes, and the helpers cases share.
// Each case builds its hostile input at run time (generators, not committed files), sends it to the
// real Kura and says what happened in the notation its expectation is written in:
//
//   "400 VALIDATION_FAILED"       an HTTP answer (status and error code; a bare status for 2xx)
//   "failed ARCHIVE_CORRUPT"      an upload that ended failed, with its first error's code
//   "published"                   an upload that was published
//   "needs_mapping"               an upload (a ROS 2 bag) that ended asking for a mapping
//   "rejected MANIFEST_INVALID"   a policy bundle that ended rejected, with its first error's code
//   "ready"                       a policy that became ready
//   free text                     what a WebSocket or multi-step case saw, e.g. "FRAME_INVALID, open, 0 recorded"
import { isFinishedUpload, type UploadStatus } from '@kura/schema';
import type { Canary } from './canary.js';
import type { CaseClient, Reply } from './kura.js';
import { statusOf } from './kura.js';
import type { World } from './world.js';

export type Family = 'uploads' | 'archives' | 'http' | 'auth' | 'policies' | 'trainers' | 'websocket';
export const families: readonly Family[] = ['uploads', 'archives', 'http', 'auth', 'policies', 'trainers', 'websocket'];

export interface CaseContext {
  client: CaseClient;
  world: World;
  canary: Canary;
  /** A folder of this case's own, for files it builds. */
  scratch: string;
}

export interface HostileCase {
  family: Family;
  /** Unique in the corpus: `<family>/<area>/<what>`. */
  name: string;
  /** The outcome that must happen; a list when several answers are equally right. */
  expect: string | readonly string[];
  /** Most the case may take (an answer that blocks the api for long is a denial of service); past it, the outcome says so. */
  maxMs?: number;
  run(context: CaseContext): Promise<string>;
}

/** Codes that mean "Kura did not understand what went wrong": a case may only end so when it expects it. */
export const uncodedFailures = ['INGEST_FAILED', 'INGEST_CRASHED', 'INTERNAL_ERROR', 'INTERNAL', 'POLICY_VALIDATION_CRASHED'];

export const expectationsOf = (hostile: HostileCase): readonly string[] =>
  typeof hostile.expect === 'string' ? [hostile.expect] : hostile.expect;

/** How long a case may wait for its upload or policy job before it counts as stuck. */
export const JOB_TIMEOUT_MS = 120_000;

const terminalUpload = (reply: Reply) => reply.status !== 200 || isFinishedUpload(reply.body?.status as UploadStatus);

/** An upload's end in the corpus notation: `published`, `failed <first code>`, or what it was stuck at. */
export function uploadOutcome(reply: Reply): string {
  if (reply.status !== 200) return statusOf(reply);
  const status = String(reply.body?.status);
  if (status === 'failed') {
    const errors = reply.body?.errors;
    const first = Array.isArray(errors) ? (errors[0] as { code?: unknown } | undefined) : undefined;
    return `failed ${typeof first?.code === 'string' ? first.code : '(no error)'}`;
  }
  if (status === 'published' || status === 'needs_mapping') return status;
  return `still ${status} after ${JOB_TIMEOUT_MS / 1000} s`;
}

export interface UploadOptions {
  /** The body, or a function making it (called once). */
  body: Uint8Array | string;
  /** Query string without `?`, e.g. `format=rlds&fileName=x.tfrecord`. */
  query?: string;
  headers?: Record<string, string>;
  contentType?: string;
  /** Upload into this dataset instead of a new private one of operator A. */
  datasetId?: string;
  /** Features the new dataset is created with. */
  features?: Record<string, unknown>;
}

/**
 * Uploads into a fresh private dataset of operator A and waits for the upload's end. Returns the
 * outcome, and the upload's reply for cases that look further.
 */
export async function uploadAndWait(
  context: CaseContext,
  options: UploadOptions,
): Promise<{ outcome: string; upload?: Reply; datasetId: string }> {
  const { client, world } = context;
  const datasetId = options.datasetId ?? (await world.newDataset(client, { features: options.features }));
  const accepted = await client.post(`/v1/datasets/${datasetId}/uploads${options.query ? `?${options.query}` : ''}`, {
    key: world.keys.operatorA.key,
    body: options.body,
    ...(options.contentType ? { contentType: options.contentType } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
  });
  if (accepted.status !== 202) return { outcome: statusOf(accepted), datasetId };
  const upload = await client.until(`/v1/uploads/${String(accepted.body?.id)}`, terminalUpload, world.keys.operatorA.key, JOB_TIMEOUT_MS);
  const outcome = uploadOutcome(upload);
  if (outcome === 'published') client.kura.publishedDatasets.add(datasetId);
  return { outcome, upload, datasetId };
}

/** The shortcut most upload cases use: the outcome alone. */
export const upload = async (context: CaseContext, options: UploadOptions): Promise<string> =>
  (await uploadAndWait(context, options)).outcome;

/** A policy bundle's end: `ready`, `rejected <first code>`, or the HTTP refusal. */
export async function policyAndWait(
  context: CaseContext,
  bundle: Uint8Array,
  options: { key?: string; access?: 'public' | 'private'; contentType?: string } = {},
): Promise<{ outcome: string; policy?: Reply }> {
  const { client, world } = context;
  const key = options.key ?? world.keys.developerA.key;
  const accepted = await client.post(`/v1/policies?access=${options.access ?? 'private'}`, {
    key,
    body: bundle,
    contentType: options.contentType ?? 'application/octet-stream',
  });
  if (accepted.status !== 202) return { outcome: statusOf(accepted) };
  const policy = await client.until(
    `/v1/policies/${String(accepted.body?.id)}`,
    (reply) => reply.status !== 200 || reply.body?.status !== 'validating',
    key,
    JOB_TIMEOUT_MS,
  );
  if (policy.status !== 200) return { outcome: statusOf(policy), policy };
  const status = String(policy.body?.status);
  if (status === 'rejected') {
    const errors = policy.body?.errors;
    const first = Array.isArray(errors) ? (errors[0] as { code?: unknown } | undefined) : undefined;
    return { outcome: `rejected ${typeof first?.code === 'string' ? first.code : '(no error)'}`, policy };
  }
  if (status === 'ready') return { outcome: 'ready', policy };
  return { outcome: `still ${status} after ${JOB_TIMEOUT_MS / 1000} s`, policy };
}
