import { AppError, notFound } from '../errors/app-error.js';
import type { UrdfError } from './urdf.js';

export const robotNotFound = (id: string) => notFound('ROBOT_NOT_FOUND', 'robot', id);

export const robotNotOwned = (id: string) =>
  new AppError({
    code: 'FORBIDDEN',
    kind: 'forbidden',
    message: `only the owner of robot "${id}" or an admin may change it`,
    details: { id },
  });

export const bodyModelMissing = (id: string) =>
  new AppError({ code: 'BODY_MODEL_NOT_FOUND', kind: 'not_found', message: `robot "${id}" has no body model yet`, details: { id } });

export const bodyModelEmpty = () =>
  new AppError({ code: 'BODY_MODEL_EMPTY', kind: 'invalid', message: 'the request body is empty; send the URDF file as the body' });

export const bodyModelNotXml = () =>
  new AppError({
    code: 'UNSUPPORTED_MEDIA_TYPE',
    kind: 'unsupported_media_type',
    message: 'send the URDF file itself as the body (Content-Type: application/xml)',
  });

export const bodyModelNotUtf8 = () =>
  new AppError({ code: 'BODY_MODEL_MALFORMED_XML', kind: 'unprocessable', message: 'the body model is not valid UTF-8 text' });

/** The parser's refusal (its code and position) as the upload's 422, located in the body model file. */
export const bodyModelUnusable = (error: UrdfError) =>
  new AppError({
    code: error.code,
    kind: 'unprocessable',
    message: error.message,
    details: {
      ...(error.line !== undefined ? { line: error.line } : {}),
      ...(error.column !== undefined ? { column: error.column } : {}),
    },
    location: { file: 'body-model.urdf', ...(error.line !== undefined ? { line: error.line } : {}) },
  });
