import { Readable } from 'node:stream';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { imageShape, shortFloat32 } from '@kura/formats';
import { valuesPerStep, type FeatureSpec, type PolicyManifest, type SessionView } from '@kura/schema';
import { isAdmin, requireRole, type Principal } from '../auth/principal.js';
import { newId } from '../common/ids.js';
import type { KuraConfig } from '../config/config.js';
import { KURA_CONFIG, LOGGER } from '../database/database.tokens.js';
import { DatasetsRepository } from '../datasets/datasets.repository.js';
import { DatasetsService } from '../datasets/datasets.service.js';
import { GrantsRepository } from '../datasets/grants.repository.js';
import { AppError } from '../errors/app-error.js';
import type { Logger } from '../logging/logger.js';
import { policyNotReady } from '../policies/policies.errors.js';
import { PoliciesService } from '../policies/policies.service.js';
import { normalize, unnormalize } from '../policies/normalization.js';
import { isPolicyError } from '../policies/runtimes/policy-runtime.js';
import { UploadsService } from '../uploads/uploads.service.js';
import { parseObservation, shapeAction, type JsonObservation } from './observation.js';
import { QuotaService } from '../usage/quota.service.js';
import { UsageMeter } from '../usage/usage.meter.js';
import {
  invalidObservation,
  policyActFailed,
  sessionDatasetMismatch,
  sessionDatasetNotWritable,
  sessionEnded,
  sessionNotFound,
  sessionPolicyNotFound,
  sessionStepConflict,
} from './inference.errors.js';
import { PolicyPool, type ReadyPolicy } from './policy-pool.js';
import { SessionStepWriter } from './session-step-writer.js';
import { SessionsRepository, type SessionRecord } from './sessions.repository.js';

/** How many stepping sessions a process keeps in memory (least recently stepped dropped first). */
const LIVE_SESSIONS = 10_000;

interface LiveSession {
  ownerKeyId: string;
  policy: ReadyPolicy;
  task: string | null;
  stepCount: number;
  lastTimestamp: number;
  createdAtMs: number;
  /** What each observed feature holds per step: the dataset's spec, else the session's first step; unset before that step. */
  shapes: StepShapes | undefined;
  datasetId: string;
  /** Until when (ms) the stepping key's right to record into the dataset holds without asking Postgres again. */
  writableUntilMs: number;
}

/** How long a checked right to record into a session's dataset is trusted: a revoked grant stops steps within this. */
const WRITABLE_RECHECK_MS = 1000;

/** Per observed feature: how many numbers, or the image's [height, width, channels]. */
type StepShape = { kind: 'numbers'; count: number } | { kind: 'image'; shape: [number, number, number] };
interface StepShapes {
  byFeature: Map<string, StepShape>;
  /** Where they come from, for messages. */
  source: 'the dataset’s features' | 'the session’s first step';
}

/**
 * Control sessions: a policy drives a robot step by step, each step recorded in Postgres before the
 * reply (an acknowledged step survives a crash), and the session becomes an episode of its dataset
 * through the normal ingest path when it ends — or when it has been idle for KURA_SESSION_IDLE_S, as
 * truncated. Each open session has its own warm policy instance, so a policy may keep state across
 * the steps of a session.
 */
@Injectable()
export class SessionsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private sweeper: NodeJS.Timeout | undefined;
  /** Steps of one session run one after another (in this process). */
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Sessions stepping in this process (see step()). */
  private readonly live = new Map<string, LiveSession>();

  constructor(
    private readonly sessions: SessionsRepository,
    private readonly stepWriter: SessionStepWriter,
    private readonly policies: PoliciesService,
    private readonly datasets: DatasetsService,
    private readonly datasetRecords: DatasetsRepository,
    private readonly grants: GrantsRepository,
    private readonly uploads: UploadsService,
    private readonly pool: PolicyPool,
    private readonly meter: UsageMeter,
    private readonly quotas: QuotaService,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    const everyMs = Math.min(30_000, Math.max(200, (this.config.sessions.idleSeconds * 1000) / 4));
    this.sweeper = setInterval(() => {
      this.sweep().catch((error: unknown) => this.logger.warn({ err: error }, 'session sweep failed'));
    }, everyMs);
    this.sweeper.unref();
  }

  onApplicationShutdown(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  async create(principal: Principal, request: { policyId: string; datasetId: string; task?: string | undefined }): Promise<SessionView> {
    requireRole(principal, ['user', 'developer'], 'run sessions');
    const policy = await this.readyPolicy(principal, request.policyId, 'policyId');
    const { dataset } = await this.datasets.reachReferenced(principal, request.datasetId, 'datasetId');
    if (!(await this.mayRecordInto(principal, dataset))) throw sessionDatasetNotWritable(dataset.id);
    checkFit(policy.manifest, dataset.features);
    const session = await this.sessions.create({
      id: newId('ses'),
      policyId: policy.id,
      datasetId: dataset.id,
      ownerKeyId: principal.keyId,
      task: request.task ?? null,
    });
    return toView(session);
  }

  async get(principal: Principal, id: string): Promise<SessionView> {
    return toView(await this.ownSession(principal, id));
  }

  /**
   * Runs the policy on the observation and records the step before replying. A session stepping in
   * this process is kept in memory (owner, policy, count, last timestamp), so a step costs a share of
   * one SQL statement: the append (grouped with other sessions' steps by SessionStepWriter), which
   * only lands while the session is open and at the expected count.
   * When it does not land (ended elsewhere, or another process stepped it), the session is read again.
   */
  async step(
    principal: Principal,
    id: string,
    request: { observation: JsonObservation; reward?: number | undefined; task?: string | undefined; stepIndex?: number | undefined },
  ): Promise<{ action: number[] | number[][]; stepIndex: number; replayed?: true }> {
    requireRole(principal, ['user', 'developer'], 'run sessions');
    return this.serialize(id, async () => {
      let live = await this.liveSession(principal, id);
      if (request.stepIndex !== undefined && request.stepIndex !== live.stepCount) {
        // A retry, or another process stepped the session: read it again before deciding which.
        this.live.delete(id);
        live = await this.liveSession(principal, id);
        if (request.stepIndex < live.stepCount) return this.replay(id, live, { ...request, stepIndex: request.stepIndex }, live.stepCount);
        if (request.stepIndex > live.stepCount) throw sessionStepConflict(id, request.stepIndex, live.stepCount, 'gap');
      }
      await this.checkStillWritable(principal, live);
      const parsed = parseObservation(live.policy.manifest, undefined, request.observation);
      // Checked before anything is recorded: a step unlike the episode's others would fail its ingest.
      const shapes = stepShapesOf(parsed);
      if (live.shapes) checkStepShapes(shapes, live.shapes);
      // A task arriving with a step (openpi's `prompt`) becomes the session's when it has none.
      if (request.task && !live.task) {
        await this.sessions.setTask(id, request.task);
        live.task = request.task;
      }
      await this.quotas.charge(principal, 'step');
      const stepIndex = live.stepCount;
      let action: number[];
      try {
        action = await this.pool.withSession(id, live.policy, undefined, async (runtime, normalization) => {
          const observation = Object.fromEntries(
            Object.entries(parsed).map(([name, value]) => [
              name,
              value instanceof Uint8Array ? value : normalize(value, normalization, name),
            ]),
          );
          const started = performance.now();
          const raw = await runtime.act(observation, { step: stepIndex, task: live.task ?? undefined });
          this.meter.record(live.ownerKeyId, { sessionSteps: 1, inferenceMs: performance.now() - started }, live.policy.id);
          return unnormalize(Array.from(raw, shortFloat32), normalization);
        });
      } catch (error) {
        if (isPolicyError(error)) throw policyActFailed(error, { sessionId: id, step: stepIndex });
        throw error;
      }
      // Seconds since the session began (0 at its first step), never going back: ingest refuses that.
      const timestamp = stepIndex === 0 ? 0 : Math.max(live.lastTimestamp, (Date.now() - live.createdAtMs) / 1000);
      const appended = await this.stepWriter.append(id, {
        stepIndex,
        observation: request.observation,
        action,
        reward: request.reward ?? null,
        timestamp,
      });
      if (appended === 'stale') {
        this.live.delete(id);
        const current = await this.sessions.findById(id);
        if (current && current.status !== 'open') throw sessionEnded(id, current.status);
        // The same retry, landed first through another process.
        if (request.stepIndex !== undefined) return this.replay(id, live, { ...request, stepIndex }, current?.stepCount);
        throw sessionStepConflict(id, stepIndex, current?.stepCount);
      }
      live.stepCount = stepIndex + 1;
      live.lastTimestamp = timestamp;
      live.shapes ??= { byFeature: shapes, source: 'the session’s first step' };
      return { action: shapeAction(action, live.policy.manifest), stepIndex };
    });
  }

  /**
   * A step sent again with the index it was recorded at (its reply was lost): the recorded action,
   * without running the policy or charging the quota again. The same observation and reward, or 409
   * (with `nextStep`, the session's count as the caller just read it).
   */
  private async replay(
    id: string,
    live: LiveSession,
    request: { observation: JsonObservation; reward?: number | undefined; stepIndex: number },
    nextStep: number | undefined,
  ): Promise<{ action: number[] | number[][]; stepIndex: number; replayed: true }> {
    const recorded = await this.sessions.stepAt(id, request.stepIndex);
    const same =
      recorded !== null &&
      (recorded.reward ?? null) === (request.reward ?? null) &&
      canonicalJson(recorded.observation) === canonicalJson(request.observation);
    if (!same) throw sessionStepConflict(id, request.stepIndex, nextStep, 'recorded');
    return { action: shapeAction(recorded.action, live.policy.manifest), stepIndex: request.stepIndex, replayed: true };
  }

  /** The session as this process last saw it step, or read from Postgres (then kept) when it has not. */
  private async liveSession(principal: Extract<Principal, { kind: 'key' }>, id: string): Promise<LiveSession> {
    let live = this.live.get(id);
    if (!live) {
      const session = await this.sessions.findById(id);
      // Another key's session is not found whatever its state: its state would tell that it exists.
      if (!session || !(isAdmin(principal) || session.ownerKeyId === principal.keyId)) throw sessionNotFound(id);
      if (session.status !== 'open') throw sessionEnded(id, session.status);
      const last = await this.sessions.lastStep(id);
      const policy = await this.readyPolicy(principal, session.policyId, 'policyId');
      live = {
        ownerKeyId: session.ownerKeyId,
        policy,
        task: session.task,
        stepCount: session.stepCount,
        lastTimestamp: last?.timestamp ?? 0,
        createdAtMs: session.createdAt.getTime(),
        shapes: await this.recordedShapes(session, policy.manifest),
        datasetId: session.datasetId,
        writableUntilMs: 0,
      };
      if (this.live.size >= LIVE_SESSIONS) this.live.delete(this.live.keys().next().value!);
      this.live.set(id, live);
    } else {
      // Most recently used last, so the first entry is the one to drop.
      this.live.delete(id);
      this.live.set(id, live);
    }
    if (!(isAdmin(principal) || live.ownerKeyId === principal.keyId)) throw sessionNotFound(id);
    return live;
  }

  /** The session's episode goes into its dataset: its owner, an admin or a grantee may record there. */
  private async mayRecordInto(
    principal: Extract<Principal, { kind: 'key' }>,
    dataset: { id: string; ownerKeyId: string },
  ): Promise<boolean> {
    return isAdmin(principal) || dataset.ownerKeyId === principal.keyId || this.grants.exists(dataset.id, principal.keyId);
  }

  /**
   * Asked again at steps (at most once a WRITABLE_RECHECK_MS per session and process), so a revoked
   * grant or a deleted dataset stops the session's recording; the steps accepted before stay.
   */
  private async checkStillWritable(principal: Extract<Principal, { kind: 'key' }>, live: LiveSession): Promise<void> {
    const now = Date.now();
    if (now < live.writableUntilMs) return;
    const dataset = await this.datasetRecords.findById(live.datasetId);
    if (!dataset || !(await this.mayRecordInto(principal, dataset))) {
      live.writableUntilMs = 0;
      throw sessionDatasetNotWritable(live.datasetId);
    }
    live.writableUntilMs = now + WRITABLE_RECHECK_MS;
  }

  /** What the session's steps must hold: the dataset's features when it has them, else what its first step held. */
  private async recordedShapes(session: SessionRecord, manifest: PolicyManifest): Promise<StepShapes | undefined> {
    const features = (await this.datasetRecords.findById(session.datasetId))?.features;
    if (features) {
      const byFeature = new Map<string, StepShape>();
      for (const name of manifest.observation) {
        const feature = features[name];
        if (!feature) continue;
        const [height, width, channels] = feature.shape;
        byFeature.set(
          name,
          feature.dtype === 'image' && height !== undefined && width !== undefined && channels !== undefined
            ? { kind: 'image', shape: [height, width, channels] }
            : { kind: 'numbers', count: valuesPerStep(feature) },
        );
      }
      return { byFeature, source: 'the dataset’s features' };
    }
    const [first] = session.stepCount > 0 ? await this.sessions.steps(session.id, -1, 1) : [];
    if (!first) return undefined;
    return { byFeature: stepShapesOf(parseObservation(manifest, undefined, first.observation)), source: 'the session’s first step' };
  }

  /** The session's policy manifest (the WebSocket's metadata frame). */
  async manifestOf(principal: Principal, id: string): Promise<{ session: SessionView; manifest: PolicyManifest }> {
    const session = await this.ownSession(principal, id);
    if (session.status !== 'open') throw sessionEnded(id, session.status);
    const policy = await this.readyPolicy(principal, session.policyId, 'policyId');
    return { session: toView(session), manifest: policy.manifest };
  }

  /** Ends the session and turns it into an episode upload (the same upload on a repeat). */
  async end(principal: Principal, id: string, request: { success?: boolean | undefined }): Promise<{ uploadId: string | null }> {
    const session = await this.ownSession(principal, id);
    if (session.status === 'open') await this.sessions.end(id, 'ended', request.success ?? null);
    return { uploadId: await this.upload(id) };
  }

  /** Ends idle sessions as truncated, and uploads ended ones a crash left without their upload. */
  async sweep(): Promise<void> {
    const before = new Date(Date.now() - this.config.sessions.idleSeconds * 1000);
    for (const { id } of await this.sessions.idleSince(before)) {
      if (await this.sessions.end(id, 'truncated', null)) this.logger.info({ sessionId: id }, 'idle session truncated');
      await this.upload(id);
    }
    for (const { id } of await this.sessions.endedWithoutUpload()) await this.upload(id);
  }

  /** Makes (once) the Kura NDJSON episode of an ended session and uploads it into its dataset. */
  private async upload(id: string): Promise<string | null> {
    this.pool.releaseSession(id);
    this.live.delete(id);
    const session = (await this.sessions.findById(id))!;
    if (session.uploadId) return session.uploadId;
    if (session.stepCount === 0) return null;
    const { upload } = await this.uploads.store({
      datasetId: session.datasetId,
      ownerKeyId: session.ownerKeyId,
      body: Readable.from(this.episodeLines(session)),
      format: 'kura-ndjson',
      fileName: `${session.id}.ndjson`,
      // A repeat (a crash between upload and bookkeeping) finds the first upload.
      idempotencyKey: `session:${session.id}`,
      maxBytes: this.config.uploads.maxBytes,
    });
    await this.sessions.setUpload(id, upload.id);
    return upload.id;
  }

  private async *episodeLines(session: SessionRecord): AsyncGenerator<string> {
    const policy = await this.policies.findById(session.policyId);
    const shape = policy?.manifest?.action.shape ?? [Infinity];
    const dimensions = shape[shape.length - 1]!;
    let after = -1;
    for (;;) {
      const steps = await this.sessions.steps(session.id, after, 500);
      for (const step of steps) {
        const observation: Record<string, unknown> = {};
        for (const [name, value] of Object.entries(step.observation)) {
          const key = name.replace(/^observation\./, '');
          if (typeof value === 'string') {
            const bytes = Buffer.from(value, 'base64');
            observation[key] = { [bytes[0] === 0xff ? 'jpeg' : 'png']: value };
          } else observation[key] = (value as unknown[]).flat(Infinity);
        }
        const isLast = step.stepIndex === session.stepCount - 1;
        yield `${JSON.stringify({
          episode: session.id,
          step: step.stepIndex,
          timestamp: step.timestamp,
          observation,
          // Of an action chunk, the first action is the one the robot took at this step.
          action: step.action.slice(0, dimensions),
          ...(step.reward !== null ? { reward: step.reward } : {}),
          ...(session.task ? { language: session.task } : {}),
          ...(isLast && session.success !== null ? { success: session.success, isTerminal: session.status === 'ended' } : {}),
        })}\n`;
      }
      if (steps.length < 500) return;
      after = steps[steps.length - 1]!.stepIndex;
    }
  }

  private async ownSession(principal: Principal, id: string): Promise<SessionRecord> {
    requireRole(principal, ['user', 'developer'], 'run sessions');
    const session = await this.sessions.findById(id);
    if (!session || !(isAdmin(principal) || session.ownerKeyId === principal.keyId)) throw sessionNotFound(id);
    return session;
  }

  private async readyPolicy(principal: Principal, policyId: string, field: string): Promise<ReadyPolicy> {
    let policy;
    try {
      policy = await this.policies.findVisible(principal, policyId);
    } catch (error) {
      if (error instanceof AppError && error.code === 'POLICY_NOT_FOUND') throw sessionPolicyNotFound(policyId, field);
      throw error;
    }
    if (policy.status !== 'ready' || !policy.manifest || !policy.entryKey) throw policyNotReady(policy.id, policy.status);
    return { ...policy, manifest: policy.manifest, entryKey: policy.entryKey };
  }

  private serialize<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(id) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.queues.set(id, settled);
    void settled.then(() => {
      if (this.queues.get(id) === settled) this.queues.delete(id);
    });
    return next;
  }
}

/** What a step's observation holds per feature; an image whose header cannot be read is refused here. */
function stepShapesOf(observation: Record<string, number[] | Uint8Array>): Map<string, StepShape> {
  const shapes = new Map<string, StepShape>();
  for (const [name, value] of Object.entries(observation)) {
    if (!(value instanceof Uint8Array)) {
      shapes.set(name, { kind: 'numbers', count: value.length });
      continue;
    }
    const shape = imageShape(value);
    if (!shape) throw invalidObservation(`observation.${name}`, 'the image’s size cannot be read from its header');
    shapes.set(name, { kind: 'image', shape });
  }
  return shapes;
}

const describeShape = (shape: StepShape) =>
  shape.kind === 'numbers' ? `${shape.count} numbers` : `an image of ${shape.shape.join('×')} (height×width×channels)`;

/** Refuses a step whose features differ from the session's: its episode could not be ingested. */
function checkStepShapes(shapes: Map<string, StepShape>, expected: StepShapes): void {
  for (const [name, shape] of shapes) {
    const wanted = expected.byFeature.get(name);
    if (!wanted) continue;
    const same =
      wanted.kind === shape.kind &&
      (wanted.kind === 'numbers'
        ? shape.kind === 'numbers' && shape.count === wanted.count
        : shape.kind === 'image' && shape.shape.every((dimension, axis) => dimension === wanted.shape[axis]));
    if (!same) {
      throw invalidObservation(
        `observation.${name}`,
        `holds ${describeShape(shape)}, but ${name} holds ${describeShape(wanted)} per step (set by ${expected.source}); nothing was recorded`,
      );
    }
  }
}

/**
 * A session's steps become Kura NDJSON: observation features must be `observation.<name>`, numeric
 * ones float32 vectors (or images) as the dataset has them, and the action must have the dataset's
 * `action` size. A dataset without features yet takes the session's.
 */
function checkFit(manifest: PolicyManifest, features: FeatureSpec | null): void {
  const problems: string[] = [];
  for (const name of manifest.observation) {
    if (!name.startsWith('observation.')) problems.push(`"${name}" is not an observation.<name> feature`);
    const feature = features?.[name];
    if (features && !feature) problems.push(`the dataset has no "${name}"`);
    else if (feature && feature.dtype !== 'image' && feature.dtype !== 'float32')
      problems.push(`"${name}" is ${feature.dtype} in the dataset; sessions record float32`);
  }
  const dimensions = manifest.action.shape[manifest.action.shape.length - 1]!;
  const action = features?.action;
  if (features && (!action || action.dtype !== 'float32' || valuesPerStep(action) !== dimensions)) {
    problems.push(`the dataset's action is not float32 [${dimensions}], as the policy's`);
  }
  if (problems.length > 0) {
    throw sessionDatasetMismatch(problems);
  }
}

function toView(session: SessionRecord): SessionView {
  return {
    id: session.id,
    policyId: session.policyId,
    datasetId: session.datasetId,
    task: session.task,
    status: session.status,
    stepCount: session.stepCount,
    success: session.success,
    uploadId: session.uploadId,
    createdAt: session.createdAt.toISOString(),
    endedAt: session.endedAt?.toISOString() ?? null,
  };
}

/**
 * JSON with object keys sorted, for comparing an observation with the recorded one: Postgres
 * (jsonb) keeps keys in an order of its own, and writes -0 as 0 as JSON.stringify does.
 */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}
