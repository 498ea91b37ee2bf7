import { AppError, notFound } from '../errors/app-error.js';

export const edgeExportNotFound = (id: string) => notFound('EDGE_EXPORT_NOT_FOUND', 'edge export', id);

/** A dataset of the policy's lineage does not allow edge export (its terms say `deny`, or it has none). */
export const edgeExportDenied = (policyId: string, datasets: Array<{ datasetId: string; reason: string }>) =>
  new AppError({
    code: 'EDGE_EXPORT_DENIED',
    kind: 'forbidden',
    message: `policy "${policyId}" may not be exported to a device: ${datasets.map((dataset) => `${dataset.datasetId} (${dataset.reason})`).join(', ')}`,
    details: { policyId, datasets },
  });

export const edgeExportNotOwned = (policyId: string) =>
  new AppError({
    code: 'FORBIDDEN',
    kind: 'forbidden',
    message: `only the owner of policy "${policyId}" or an admin may export it or see its exports`,
    details: { policyId },
  });

export const edgePolicyNotReady = (policyId: string, status: string) =>
  new AppError({
    code: 'POLICY_NOT_READY',
    kind: 'conflict',
    message: `policy "${policyId}" is ${status}; only a ready policy can be exported`,
    details: { policyId, status },
  });

export const edgeExpiryInvalid = (expiresAt: Date, maxDays: number) =>
  new AppError({
    code: 'EDGE_EXPIRY_INVALID',
    kind: 'invalid',
    message: `expiresAt ${expiresAt.toISOString()} must be in the future and at most ${maxDays} days away`,
    details: { expiresAt: expiresAt.toISOString(), maxDays },
    location: { field: 'expiresAt' },
  });

export const edgeExportRevoked = (id: string, revokedAt: Date) =>
  new AppError({
    code: 'EDGE_EXPORT_REVOKED',
    kind: 'conflict',
    message: `edge export "${id}" was revoked at ${revokedAt.toISOString()}: its reports and renewals are refused`,
    details: { exportId: id, revokedAt: revokedAt.toISOString() },
  });

/** A usage report whose records do not continue the accepted chain (usage-chain.ts names the code). */
export const edgeUsageRefused = (code: string, message: string, index: number, field: string) =>
  new AppError({
    code,
    kind: 'conflict',
    message,
    location: { field: `records.${index}.${field}` },
  });

export const edgeReportRequired = (id: string, lastReportAt: Date | null, maxAgeDays: number) =>
  new AppError({
    code: 'EDGE_REPORT_REQUIRED',
    kind: 'conflict',
    message: `edge export "${id}" is renewed only after a usage report at most ${maxAgeDays} days old (KURA_EDGE_REPORT_MAX_AGE_DAYS); ${
      lastReportAt ? `the last came at ${lastReportAt.toISOString()}` : 'none came yet'
    }: run kura edge report first`,
    details: { exportId: id, lastReportAt: lastReportAt?.toISOString() ?? null, maxAgeDays },
  });
