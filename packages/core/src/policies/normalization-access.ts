import type { PolicyManifest } from '@kura/schema';
import type { DatasetRecord } from '../datasets/datasets.repository.js';
import type { DatasetReachService, DatasetReach } from '../datasets/dataset-reach.service.js';
import { AppError } from '../errors/app-error.js';

const field = 'normalization.datasetId';

/**
 * The dataset a manifest's `normalization.datasetId` names is not there for the policy: unknown, not
 * readable in full by the policy's owner (or no longer: a grant revoked), or without a published version.
 */
export class NormalizationUnavailable extends AppError {
  /** Where the problem is, for rejections and failed evaluations. */
  readonly location = { field };

  constructor(message: string, datasetId: string) {
    super({ code: 'NORMALIZATION_DATASET_NOT_FOUND', kind: 'unprocessable', message, details: { datasetId }, location: { field } });
    this.name = 'NormalizationUnavailable';
  }
}

/**
 * The dataset a policy normalizes with, when its owner may read it in full — the slices' rules
 * (`DatasetReachService.reach`) as the owner's key is now — and it has a published version. Its
 * statistics are computed over every episode, so a `sample` dataset needs a grant as a slice past its
 * public part does, and a private one ownership or a grant. Unknown and unreadable datasets get the
 * same answer, so a policy cannot probe which private ids exist. The one check at validation and at
 * every use (act, session step, evaluation). Undefined when the manifest names no dataset.
 */
export async function readableNormalizationDataset(
  access: DatasetReachService,
  policy: { ownerKeyId: string; manifest: PolicyManifest },
): Promise<DatasetRecord | undefined> {
  const datasetId = policy.manifest.normalization?.datasetId;
  if (datasetId === undefined) return undefined;
  const unavailable = (why: string) => new NormalizationUnavailable(`${field} "${datasetId}" ${why}`, datasetId);
  let reach: DatasetReach;
  try {
    reach = await access.reachOnBehalfOf(policy.ownerKeyId, datasetId);
  } catch (error) {
    if (error instanceof AppError && error.code === 'DATASET_NOT_FOUND')
      throw unavailable("is not a dataset the policy's owner may read (a private dataset needs ownership or a grant)");
    throw error;
  }
  if (reach.episodes !== 'full') {
    throw unavailable(
      "is a sample dataset the policy's owner may read only the public part of; its statistics cover every episode, so a grant is needed",
    );
  }
  if (reach.dataset.latestVersion === 0) throw unavailable('has no published version');
  return reach.dataset;
}
