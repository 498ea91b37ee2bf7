import type {
  actRequestSchema,
  ApiKeyView,
  createDatasetRequestSchema,
  createKeyRequestSchema,
  createRobotRequestSchema,
  createSessionRequestSchema,
  createSliceRequestSchema,
  createTrainingRequestSchema,
  DatasetEarningsView,
  DatasetTermsHistoryView,
  datasetTermsRequestSchema,
  DatasetTermsView,
  DatasetView,
  edgeExportRequestSchema,
  EdgeRenewView,
  EdgeUsageRecord,
  EdgeUsageReportView,
  EdgeExportView,
  EdgeKeysView,
  endSessionRequestSchema,
  EpisodeQuery,
  EpisodeView,
  evaluationRequestSchema,
  EvaluationView,
  GrantView,
  LeaderboardEntry,
  LedgerView,
  Page,
  PolicyView,
  RobotView,
  SessionView,
  sessionStepRequestSchema,
  SliceFormat,
  SliceView,
  StepLine,
  TrainerView,
  TrainingMetricsView,
  TrainingView,
  updateKeyRequestSchema,
  UploadView,
  UsageView,
  VersionView,
} from '@kura/schema';
import type { z } from 'zod';
import { defaultRetryPolicy, HttpClient, type RetryPolicy } from './http.js';
import { poll } from './poll.js';
import { Uploads } from './uploads.js';
import { Downloads } from './downloads.js';

// Request types are the API's own zod schemas (as callers write them: defaults optional); reply types
// are the views the API's services return. Both live in @kura/schema: one source of truth.
export type CreateRobot = z.input<typeof createRobotRequestSchema>;
export type CreateDataset = z.input<typeof createDatasetRequestSchema>;
export type CreateKey = z.input<typeof createKeyRequestSchema>;
export type UpdateKey = z.input<typeof updateKeyRequestSchema>;
export type CreateSlice = z.input<typeof createSliceRequestSchema>;
export type CreateEvaluation = z.input<typeof evaluationRequestSchema>;
export type Act = z.input<typeof actRequestSchema>;
export type CreateSession = z.input<typeof createSessionRequestSchema>;
export type SessionStep = z.input<typeof sessionStepRequestSchema>;
export type EndSession = z.input<typeof endSessionRequestSchema>;
export type CreateTraining = z.input<typeof createTrainingRequestSchema>;
/** One line of a slice downloaded as `ndjson`. */
export type SliceNdjsonLine = StepLine;
export type {
  ApiKeyView,
  DatasetView,
  EpisodeView,
  EvaluationView,
  GrantView,
  LeaderboardEntry,
  PolicyView,
  RobotView,
  SessionView,
  SliceView,
  TrainerView,
  TrainingMetricsView,
  TrainingView,
  UploadView,
  UsageView,
  VersionView,
  Page,
  SliceFormat,
};

export interface KuraClientOptions {
  /** The server, e.g. http://localhost:8080. */
  url: string;
  /** An API key (`kura_…`); reads of public data work without one. */
  apiKey?: string | undefined;
  retry?: Partial<RetryPolicy>;
}

type ListQuery = { limit?: number; cursor?: string };

/** A typed client for the whole Kura API (API.md and the README's additions). */
export class KuraClient {
  readonly http: HttpClient;
  readonly uploads: Uploads;
  readonly downloads: Downloads;

  constructor(options: KuraClientOptions) {
    this.http = new HttpClient(options.url, options.apiKey, { ...defaultRetryPolicy, ...options.retry });
    this.uploads = new Uploads(this.http);
    this.downloads = new Downloads(this.http);
  }

  health(): Promise<{ status: string; checks: Record<string, string> }> {
    return this.http.json('GET', '/health');
  }

  readonly keys = {
    me: (): Promise<ApiKeyView> => this.http.json('GET', '/v1/keys/me'),
    create: (request: CreateKey): Promise<ApiKeyView & { key: string }> => this.http.json('POST', '/v1/keys', { body: { json: request } }),
    list: (query: ListQuery = {}): Promise<Page<ApiKeyView>> => this.http.json('GET', '/v1/keys', { query }),
    get: (id: string): Promise<ApiKeyView> => this.http.json('GET', `/v1/keys/${enc(id)}`),
    update: (id: string, request: UpdateKey): Promise<ApiKeyView> =>
      this.http.json('PATCH', `/v1/keys/${enc(id)}`, { body: { json: request }, idempotent: true }),
    revoke: (id: string): Promise<ApiKeyView> => this.http.json('DELETE', `/v1/keys/${enc(id)}`),
  };

  readonly robots = {
    create: (request: CreateRobot): Promise<RobotView> => this.http.json('POST', '/v1/robots', { body: { json: request } }),
    list: (query: ListQuery = {}): Promise<Page<RobotView>> => this.http.json('GET', '/v1/robots', { query }),
    get: (id: string): Promise<RobotView> => this.http.json('GET', `/v1/robots/${enc(id)}`),
    putBodyModel: (id: string, urdf: Uint8Array<ArrayBuffer>): Promise<unknown> =>
      this.http.json('PUT', `/v1/robots/${enc(id)}/body-model`, { body: { bytes: urdf, contentType: 'application/xml' } }),
    bodyModel: (id: string): Promise<unknown> => this.http.json('GET', `/v1/robots/${enc(id)}/body-model`),
  };

  readonly datasets = {
    create: (request: CreateDataset): Promise<DatasetView> => this.http.json('POST', '/v1/datasets', { body: { json: request } }),
    list: (query: ListQuery & { robotId?: string } = {}): Promise<Page<DatasetView>> => this.http.json('GET', '/v1/datasets', { query }),
    get: (id: string): Promise<DatasetView> => this.http.json('GET', `/v1/datasets/${enc(id)}`),
    versions: (id: string, query: ListQuery = {}): Promise<Page<VersionView>> =>
      this.http.json('GET', `/v1/datasets/${enc(id)}/versions`, { query }),
    episodes: (id: string, query: Partial<EpisodeQuery> = {}): Promise<Page<EpisodeView>> =>
      this.http.json('GET', `/v1/datasets/${enc(id)}/episodes`, { query: query as Record<string, string> }),
    stats: (id: string, query: { version?: number; scope?: 'all' | 'sample' } = {}): Promise<Record<string, unknown>> =>
      this.http.json('GET', `/v1/datasets/${enc(id)}/stats`, { query }),
    uploads: (id: string, query: ListQuery & { status?: string } = {}): Promise<Page<UploadView>> =>
      this.http.json('GET', `/v1/datasets/${enc(id)}/uploads`, { query }),
    leaderboard: (id: string): Promise<{ items: LeaderboardEntry[] }> => this.http.json('GET', `/v1/datasets/${enc(id)}/leaderboard`),
    grant: (id: string, keyId: string): Promise<GrantView> =>
      this.http.json('POST', `/v1/datasets/${enc(id)}/grants`, { body: { json: { keyId } }, idempotent: true }),
    grants: (id: string): Promise<Page<GrantView>> => this.http.json('GET', `/v1/datasets/${enc(id)}/grants`),
    revokeGrant: (id: string, keyId: string): Promise<unknown> => this.http.json('DELETE', `/v1/datasets/${enc(id)}/grants/${enc(keyId)}`),
    /** Sets the dataset's terms (owner or admin): edge export, fee per 1,000 policy calls, text (docs/ledger.md). */
    setTerms: (id: string, request: z.input<typeof datasetTermsRequestSchema>): Promise<DatasetTermsView> =>
      this.http.json('PUT', `/v1/datasets/${enc(id)}/terms`, { body: { json: request }, idempotent: true }),
    terms: (id: string): Promise<DatasetTermsHistoryView> => this.http.json('GET', `/v1/datasets/${enc(id)}/terms`),
    /** What the calls of policies trained on the dataset earned it (owner or admin). */
    earnings: (id: string, query: { from?: string; to?: string } = {}): Promise<DatasetEarningsView> =>
      this.http.json('GET', `/v1/datasets/${enc(id)}/earnings`, { query }),
  };

  readonly slices = {
    create: (request: CreateSlice): Promise<SliceView> => this.http.json('POST', '/v1/slices', { body: { json: request } }),
    get: (id: string): Promise<SliceView> => this.http.json('GET', `/v1/slices/${enc(id)}`),
    stats: (id: string): Promise<Record<string, unknown>> => this.http.json('GET', `/v1/slices/${enc(id)}/stats`),
  };

  readonly policies = {
    get: (id: string): Promise<PolicyView> => this.http.json('GET', `/v1/policies/${enc(id)}`),
    list: (query: ListQuery & { name?: string } = {}): Promise<Page<PolicyView>> => this.http.json('GET', '/v1/policies', { query }),
    /** Uploads a bundle (.tar.gz/.tar/.zip bytes); the policy is then `validating` (see waitReady). */
    upload: (bundle: Uint8Array<ArrayBuffer>, access: 'public' | 'private' = 'private'): Promise<PolicyView> =>
      this.http.json('POST', '/v1/policies', { query: { access }, body: { bytes: bundle, contentType: 'application/gzip' } }),
    /** Polls until validation ends (ready or rejected). */
    waitReady: (id: string, options: { intervalMs?: number; timeoutMs?: number } = {}): Promise<PolicyView> =>
      poll(
        () => this.policies.get(id),
        (policy) => policy.status !== 'validating',
        options,
      ),
    evaluate: (id: string, request: CreateEvaluation): Promise<EvaluationView> =>
      this.http.json('POST', `/v1/policies/${enc(id)}/evaluations`, { body: { json: request } }),
    act: (id: string, request: Act): Promise<{ action: number[] | number[][]; policyId: string; latencyMs: number }> =>
      this.http.json('POST', `/v1/policies/${enc(id)}/act`, { body: { json: request } }),
  };

  readonly evaluations = {
    get: (id: string): Promise<EvaluationView> => this.http.json('GET', `/v1/evaluations/${enc(id)}`),
    /** Polls until the evaluation completes or fails. */
    wait: (id: string, options: { intervalMs?: number; timeoutMs?: number } = {}): Promise<EvaluationView> =>
      poll(
        () => this.evaluations.get(id),
        (evaluation) => evaluation.status === 'completed' || evaluation.status === 'failed',
        options,
      ),
  };

  readonly trainers = {
    /** Uploads a trainer bundle (.tar.gz/.tar/.zip bytes); it is then `validating` (see waitReady). */
    upload: (bundle: Uint8Array<ArrayBuffer>): Promise<TrainerView> =>
      this.http.json('POST', '/v1/trainers', { body: { bytes: bundle, contentType: 'application/gzip' } }),
    get: (id: string): Promise<TrainerView> => this.http.json('GET', `/v1/trainers/${enc(id)}`),
    list: (query: ListQuery = {}): Promise<Page<TrainerView>> => this.http.json('GET', '/v1/trainers', { query }),
    /** Polls until validation ends (ready or rejected). */
    waitReady: (id: string, options: { intervalMs?: number; timeoutMs?: number } = {}): Promise<TrainerView> =>
      poll(
        () => this.trainers.get(id),
        (trainer) => trainer.status !== 'validating',
        options,
      ),
  };

  readonly trainings = {
    create: (request: CreateTraining): Promise<TrainingView> => this.http.json('POST', '/v1/trainings', { body: { json: request } }),
    get: (id: string): Promise<TrainingView> => this.http.json('GET', `/v1/trainings/${enc(id)}`),
    list: (query: ListQuery = {}): Promise<Page<TrainingView>> => this.http.json('GET', '/v1/trainings', { query }),
    cancel: (id: string): Promise<TrainingView> => this.http.json('POST', `/v1/trainings/${enc(id)}/cancel`),
    metrics: (id: string): Promise<TrainingMetricsView> => this.http.json('GET', `/v1/trainings/${enc(id)}/metrics`),
    /** The run's log once it has ended; `guarded` when it used data beyond the caller's access. */
    logs: async (id: string): Promise<{ text: string; guarded: boolean }> => {
      const { text, headers } = await this.http.text('GET', `/v1/trainings/${enc(id)}/logs`, { headers: { Accept: 'text/plain' } });
      return { text, guarded: headers.get('x-kura-log-guarded') === 'true' };
    },
    /** Polls until the run ends (succeeded, failed or cancelled); `onProgress` sees it at each poll. */
    wait: (
      id: string,
      options: { intervalMs?: number; timeoutMs?: number; onProgress?: (training: TrainingView) => void } = {},
    ): Promise<TrainingView> =>
      poll(
        () => this.trainings.get(id),
        (training) => ['succeeded', 'failed', 'cancelled'].includes(training.status),
        { ...options, ...(options.onProgress ? { onValue: options.onProgress } : {}) },
      ),
  };

  readonly sessions = {
    create: (request: CreateSession): Promise<SessionView> => this.http.json('POST', '/v1/sessions', { body: { json: request } }),
    get: (id: string): Promise<SessionView> => this.http.json('GET', `/v1/sessions/${enc(id)}`),
    /** With `stepIndex` the step is safe to send again, so it is retried like a GET (a repeat replies `replayed: true`). */
    step: (id: string, request: SessionStep): Promise<{ action: number[] | number[][]; stepIndex: number; replayed?: true }> =>
      this.http.json('POST', `/v1/sessions/${enc(id)}/steps`, {
        body: { json: request },
        idempotent: request.stepIndex !== undefined,
      }),
    end: (id: string, request: EndSession = {}): Promise<{ uploadId: string | null }> =>
      this.http.json('POST', `/v1/sessions/${enc(id)}/end`, { body: { json: request }, idempotent: true }),
  };

  usage(query: { from?: string; to?: string; keyId?: string } = {}): Promise<{ from: string; to: string; items: UsageView[] }> {
    return this.http.json('GET', '/v1/usage', { query });
  }

  /** Edge packages (docs/edge.md): policies exported to run on a robot's own computer under a signed license. */
  readonly edge = {
    /** Exports a ready policy (its owner): the package's bytes (a .tar) and the export's id. */
    export: async (
      policyId: string,
      request: z.input<typeof edgeExportRequestSchema>,
    ): Promise<{ exportId: string; bytes: Uint8Array }> => {
      const reply = await this.http.bytes('POST', `/v1/policies/${enc(policyId)}/edge-exports`, {
        body: { json: request },
        headers: { Accept: 'application/x-tar' },
      });
      return { exportId: reply.headers.get('kura-edge-export-id') ?? '', bytes: reply.bytes };
    },
    exports: (policyId: string): Promise<{ items: EdgeExportView[] }> =>
      this.http.json('GET', `/v1/policies/${enc(policyId)}/edge-exports`),
    get: (id: string): Promise<EdgeExportView> => this.http.json('GET', `/v1/edge-exports/${enc(id)}`),
    revoke: (id: string): Promise<EdgeExportView> => this.http.json('DELETE', `/v1/edge-exports/${enc(id)}`, { idempotent: true }),
    /** The public keys licenses are signed with (JWKS style; no key needed). */
    keys: (): Promise<EdgeKeysView> => this.http.json('GET', '/v1/edge/keys'),
    rotateKeys: (): Promise<EdgeKeysView> => this.http.json('POST', '/v1/edge/keys/rotate'),
    /** Reports usage-log records (in order, continuing the last accepted one; repeats are skipped). */
    report: (id: string, records: EdgeUsageRecord[]): Promise<EdgeUsageReportView> =>
      this.http.json('POST', `/v1/edge-exports/${enc(id)}/usage`, { body: { json: { records } }, idempotent: true }),
    /** A new license with a later expiry, once the device reported recently. */
    renew: (id: string, expiresAt: string): Promise<EdgeRenewView> =>
      this.http.json('POST', `/v1/edge-exports/${enc(id)}/renew`, { body: { json: { expiresAt } } }),
  };

  /** Every dataset's earnings over a range (admins; docs/ledger.md). */
  ledger(query: { from?: string; to?: string } = {}): Promise<LedgerView> {
    return this.http.json('GET', '/v1/ledger', { query });
  }
}

const enc = encodeURIComponent;
