import { AppError, notFound } from '../errors/app-error.js';

/** 400 OBSERVATION_INVALID at `field`: the one refusal of a malformed observation (act and session steps). */
export const invalidObservation = (field: string, message: string) =>
  new AppError({ code: 'OBSERVATION_INVALID', kind: 'invalid', message: `${field}: ${message}`, location: { field } });

/** A policy's own failure in act() (its PolicyError code: POLICY_TIMEOUT, POLICY_BAD_ACTION…) as a 422. */
export const policyActFailed = (error: { code: string; message: string }, details: Record<string, unknown>) =>
  new AppError({
    code: error.code,
    kind: 'unprocessable',
    message: `the policy could not act: ${error.message}`,
    details,
  });

export const policyHostsBusy = (maxHosts: number) =>
  new AppError({
    code: 'POLICY_HOSTS_BUSY',
    kind: 'unavailable',
    message: `all ${maxHosts} policy hosts of this process are in a call (KURA_POLICY_HOSTS_MAX); try again shortly`,
    details: { maxHosts },
  });

export const sessionNotFound = (id: string) => notFound('SESSION_NOT_FOUND', 'session', id);

export const sessionDatasetNotWritable = (datasetId: string) =>
  new AppError({
    code: 'SESSION_DATASET_NOT_WRITABLE',
    kind: 'forbidden',
    message: `dataset ${datasetId} belongs to another key: its owner or an admin can grant this key access`,
    details: { datasetId },
  });

/** A session's policy (at `field`) that the caller cannot see: 422, as the request names it. */
export const sessionPolicyNotFound = (policyId: string, field: string) =>
  new AppError({
    code: 'POLICY_NOT_FOUND',
    kind: 'unprocessable',
    message: `policy "${policyId}" was not found`,
    details: { policyId },
    location: { field },
  });

export const sessionDatasetMismatch = (problems: string[]) =>
  new AppError({
    code: 'SESSION_DATASET_MISMATCH',
    kind: 'unprocessable',
    message: `the policy does not fit the dataset: ${problems.join('; ')}`,
    details: { problems },
    location: { field: 'datasetId' },
  });

/**
 * The step cannot take `stepIndex`: another request recorded it (`raced`, or `recorded` with another
 * observation than the one sent again with its index), or steps before it are missing (`gap`).
 * `nextStep` is the index the session's next step gets, when known.
 */
export const sessionStepConflict = (id: string, stepIndex: number, nextStep?: number, why: 'raced' | 'recorded' | 'gap' = 'raced') =>
  new AppError({
    code: 'SESSION_STEP_CONFLICT',
    kind: 'conflict',
    message:
      why === 'gap'
        ? `session ${id} has no step ${stepIndex - 1} yet: its next step is ${nextStep}`
        : why === 'recorded'
          ? `step ${stepIndex} of session ${id} was recorded with another observation or reward; its next step is ${nextStep}`
          : `step ${stepIndex} of session ${id} was recorded by another request; send the observation again`,
    details: { sessionId: id, step: stepIndex, ...(nextStep !== undefined ? { nextStep } : {}) },
  });

export const sessionEnded = (id: string, status: string) =>
  new AppError({
    code: 'SESSION_ENDED',
    kind: 'conflict',
    message: `session ${id} is ${status}; start a new session`,
    details: { sessionId: id, status },
  });

// A session's WebSocket frames (apps/api inference/session-socket.ts) that cannot be read.
export const frameNotBinary = () =>
  new AppError({ code: 'FRAME_INVALID', kind: 'invalid', message: 'send observations as binary msgpack frames' });

export const frameNotMsgpack = (error: unknown) =>
  new AppError({ code: 'FRAME_INVALID', kind: 'invalid', message: `the frame is not msgpack: ${(error as Error).message}` });

export const frameNotMap = () =>
  new AppError({ code: 'FRAME_INVALID', kind: 'invalid', message: 'a frame is a msgpack map of the observation' });

/** The frame's value at `key` (as the client sent it) cannot be read. */
export const frameInvalid = (key: string, problem: string) =>
  new AppError({ code: 'FRAME_INVALID', kind: 'invalid', message: `${key}: ${problem}`, location: { field: key } });
