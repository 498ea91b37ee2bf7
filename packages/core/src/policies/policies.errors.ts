import { bodyInterrupted } from '../blobs/store-body.js';
import { AppError, notFound } from '../errors/app-error.js';

export const policyNotFound = (id: string) => notFound('POLICY_NOT_FOUND', 'policy', id);
export const evaluationNotFound = (id: string) => notFound('EVALUATION_NOT_FOUND', 'evaluation', id);

export const policyBundleTooLarge = (limit: number) =>
  new AppError({
    code: 'BUNDLE_TOO_LARGE',
    kind: 'too_large',
    message: `a policy bundle may hold at most ${limit} bytes (KURA_POLICY_MAX_BUNDLE_BYTES)`,
    details: { limit },
  });

export const policyBundleInterrupted = (error: unknown) => bodyInterrupted('BUNDLE_UPLOAD_INTERRUPTED', error);

export const policyBundleEmpty = () =>
  new AppError({ code: 'BUNDLE_EMPTY', kind: 'invalid', message: 'the request body is empty: send the bundle (.tar.gz or .zip)' });

export const policyNotReady = (id: string, status: string) =>
  new AppError({
    code: 'POLICY_NOT_READY',
    kind: 'conflict',
    message: `policy ${id} is ${status}; only a ready policy can be evaluated or run`,
    details: { policyId: id, status },
  });

/** Developers' code may not run at sandbox level `process`; see the README's Safety section. */
export const sandboxUnavailable = (level: string, reason: string) =>
  new AppError({
    code: 'SANDBOX_UNAVAILABLE',
    kind: 'unavailable',
    message:
      `developers' code runs only in the bubblewrap jail, and this Kura runs at sandbox level "process" (${reason}). ` +
      'Install bubblewrap (apt-get install bubblewrap) and allow user namespaces, or set KURA_SANDBOX=unsafe-none on a development machine only',
    details: { level, reason },
  });

export const evaluationVersionNotFound = (datasetId: string, version: number) =>
  new AppError({
    code: 'VERSION_NOT_FOUND',
    kind: 'unprocessable',
    message: `dataset ${datasetId} has no version ${version}`,
    details: { datasetId, version },
    location: { field: 'version' },
  });

export const bundleNotOctetStream = () =>
  new AppError({
    code: 'UNSUPPORTED_MEDIA_TYPE',
    kind: 'unsupported_media_type',
    message: 'send the bundle (.tar.gz, .tar or .zip) with Content-Type: application/octet-stream',
  });
