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

export const policyBundleEmpty = () =>
  new AppError({ code: 'BUNDLE_EMPTY', kind: 'invalid', message: 'the request body is empty: send the bundle (.tar.gz or .zip)' });

export const policyNotReady = (id: string, status: string) =>
  new AppError({
    code: 'POLICY_NOT_READY',
    kind: 'conflict',
    message: `policy ${id} is ${status}; only a ready policy can be evaluated or run`,
    details: { policyId: id, status },
  });
