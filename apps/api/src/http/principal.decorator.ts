import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { anonymous, type Principal } from '@kura/core';

export type RequestWithPrincipal = Request & { principal?: Principal };

/** The caller, as resolved by the AuthGuard. */
export const CurrentPrincipal = createParamDecorator((_: unknown, context: ExecutionContext): Principal => {
  return context.switchToHttp().getRequest<RequestWithPrincipal>().principal ?? anonymous;
});
