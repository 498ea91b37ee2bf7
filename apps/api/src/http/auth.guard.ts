import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { KeysService, anonymous, invalidAuthorizationHeader } from '@kura/core';
import type { RequestWithPrincipal } from './principal.decorator.js';

/**
 * Resolves `Authorization: Bearer <key>` to a principal on every request. No header means an
 * anonymous caller (services decide what anonymous callers may read); a bad header or key is 401.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(private readonly keys: KeysService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<RequestWithPrincipal>();
    const header = request.headers.authorization;
    if (header === undefined) {
      request.principal = anonymous;
      return true;
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) {
      throw invalidAuthorizationHeader();
    }
    request.principal = await this.keys.authenticate(match[1]);
    return true;
  }
}
