import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { AppError } from '@kura/core';
import { describeUnstorableText, findUnstorableText } from '@kura/schema';

/**
 * Refuses, on every route, a request whose path parameters, query or JSON body hold text Postgres
 * cannot store (U+0000, unpaired surrogates): 400 VALIDATION_FAILED naming the field, before the
 * route's own validation or any query. Global, so a new endpoint cannot forget it; raw bodies
 * (uploads, URDF) are not parsed here and are checked by their readers.
 */
@Injectable()
export class StorableTextGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<Request>();
    const parts = [
      ['path', request.params],
      ['query', request.query],
      ['body', request.body],
    ] as const;
    for (const [where, value] of parts) {
      const finding = findUnstorableText(value);
      if (!finding) continue;
      const { field, message } = describeUnstorableText(finding);
      throw new AppError({
        code: 'VALIDATION_FAILED',
        kind: 'invalid',
        message: `invalid request ${where}: ${message}`,
        details: { issues: [{ path: field, code: 'invalid_text', message: message.slice(field ? field.length + 2 : 0) }] },
        location: { field },
      });
    }
    return true;
  }
}
