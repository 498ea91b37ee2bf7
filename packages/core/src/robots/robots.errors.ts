import { AppError, notFound } from '../errors/app-error.js';

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
