import { Injectable } from '@nestjs/common';
import type { EvaluationRequest, EvaluationView, LeaderboardEntry, ListQuery, Page } from '@kura/schema';
import { requireRole, type Principal } from '../auth/principal.js';
import { newId } from '../common/ids.js';
import { decodeCursor, toPage } from '../common/pagination.js';
import { AppError } from '../errors/app-error.js';
import { DatasetsService } from '../datasets/datasets.service.js';
import { VersionsRepository } from '../datasets/versions.repository.js';
import { JobsService } from '../jobs/jobs.service.js';
import { EvaluationsRepository, type EvaluationRecord } from './evaluations.repository.js';
import { evaluationNotFound, evaluationVersionNotFound, policyNotReady } from './policies.errors.js';
import { visibilityWhere } from './policies.repository.js';
import { PoliciesService, policyVisibility } from './policies.service.js';

export const evaluatePolicyJobId = (evaluationId: string) => `policies.evaluate:${evaluationId}`;

/** Evaluations of policies on held-out episodes, and the leaderboards they make. */
@Injectable()
export class EvaluationsService {
  constructor(
    private readonly evaluations: EvaluationsRepository,
    private readonly policies: PoliciesService,
    private readonly datasets: DatasetsService,
    private readonly versions: VersionsRepository,
    private readonly jobs: JobsService,
  ) {}

  async create(principal: Principal, policyId: string, request: EvaluationRequest): Promise<EvaluationView> {
    requireRole(principal, ['developer'], 'evaluate policies');
    const policy = await this.policies.findVisible(principal, policyId);
    if (policy.status !== 'ready') throw policyNotReady(policy.id, policy.status);
    const { dataset } = await this.datasets.reachReferenced(principal, request.datasetId, 'datasetId');
    const version = request.version ?? dataset.latestVersion;
    if (version < 1 || !(await this.versions.find(dataset.id, version))) {
      throw evaluationVersionNotFound(dataset.id, version);
    }
    const evaluation = await this.evaluations.create({
      id: newId('evl'),
      policyId: policy.id,
      datasetId: dataset.id,
      version,
      ownerKeyId: principal.keyId,
    });
    await this.jobs.enqueue('policies.evaluate', { evaluationId: evaluation.id }, { id: evaluatePolicyJobId(evaluation.id) });
    return toEvaluationView(evaluation);
  }

  /** An evaluation, visible to whoever may see its policy. */
  async get(principal: Principal, id: string): Promise<EvaluationView> {
    const evaluation = await this.evaluations.findById(id);
    if (!evaluation) throw evaluationNotFound(id);
    try {
      await this.policies.findVisible(principal, evaluation.policyId);
    } catch {
      throw evaluationNotFound(id);
    }
    return toEvaluationView(evaluation);
  }

  /**
   * A policy's evaluations (whoever may see the policy), oldest first. Evaluations on datasets the
   * caller may not see are left out, so private dataset ids do not leak through a public policy.
   */
  async listForPolicy(principal: Principal, policyId: string, query: ListQuery): Promise<Page<EvaluationView>> {
    const policy = await this.policies.findVisible(principal, policyId);
    // Checked whether or not there is anything to list: a bad cursor is the caller's mistake either way.
    const afterId = decodeCursor(query.cursor, 'evl');
    const datasetIds: string[] = [];
    for (const datasetId of await this.evaluations.datasetIdsOfPolicy(policy.id)) {
      try {
        await this.datasets.reach(principal, datasetId);
        datasetIds.push(datasetId);
      } catch (error) {
        if (!(error instanceof AppError && error.code === 'DATASET_NOT_FOUND')) throw error;
      }
    }
    const rows =
      datasetIds.length === 0
        ? []
        : await this.evaluations.listByPolicy({
            policyId: policy.id,
            datasetIds,
            afterId,
            take: query.limit + 1,
          });
    return toPage(rows, query.limit, toEvaluationView);
  }

  /**
   * Ready policies ranked by their latest completed evaluation's actionMse on the dataset, best
   * first (ties: earlier evaluation first). Private policies only for their owner and admins.
   */
  async leaderboard(principal: Principal, datasetId: string): Promise<{ items: LeaderboardEntry[] }> {
    await this.datasets.reach(principal, datasetId);
    const rows = await this.evaluations.latestCompletedPerPolicy(datasetId, visibilityWhere(policyVisibility(principal)));
    const sorted = rows
      .filter((row) => row.metrics !== null)
      .sort(
        (first, second) =>
          first.metrics!.actionMse - second.metrics!.actionMse || first.finishedAt!.getTime() - second.finishedAt!.getTime(),
      );
    return {
      items: sorted.map((row, index) => ({
        rank: index + 1,
        policyId: row.policyId,
        name: row.policy.name,
        version: row.policy.version,
        evaluationId: row.id,
        datasetVersion: row.version,
        metrics: row.metrics!,
        evaluatedAt: row.finishedAt!.toISOString(),
      })),
    };
  }
}

export function toEvaluationView(evaluation: EvaluationRecord): EvaluationView {
  return {
    id: evaluation.id,
    policyId: evaluation.policyId,
    datasetId: evaluation.datasetId,
    version: evaluation.version,
    status: evaluation.status,
    metrics: evaluation.metrics,
    timing: evaluation.timing,
    error: evaluation.error,
    createdAt: evaluation.createdAt.toISOString(),
    startedAt: evaluation.startedAt?.toISOString() ?? null,
    finishedAt: evaluation.finishedAt?.toISOString() ?? null,
  };
}
