import { Catch, HttpException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ZodError } from 'zod';
import { AppError, outageError, type Logger } from '@kura/core';
import { sendError, statusByKind } from './error-body.js';
import { zodIssuesToDetails } from './zod.js';

/** The one place where errors become HTTP replies. */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const response = http.getResponse<Response>();
    const request = http.getRequest<Request>();
    if (exception instanceof AppError) {
      sendError(response, statusByKind[exception.kind], {
        code: exception.code,
        message: exception.message,
        ...(exception.details ? { details: exception.details } : {}),
      });
      return;
    }
    if (exception instanceof ZodError) {
      sendError(response, 400, { code: 'VALIDATION_FAILED', message: 'the request is not valid', details: zodIssuesToDetails(exception) });
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = status === 404 ? 'ROUTE_NOT_FOUND' : status === 405 ? 'METHOD_NOT_ALLOWED' : `HTTP_${status}`;
      const message = status === 404 ? `no route ${request.method} ${request.path}` : exception.message;
      sendError(response, status, { code, message });
      return;
    }
    const outage = outageError(exception);
    if (outage) {
      // A dependency is down (or the disk full): the client learns which, and may try again.
      this.logger.warn({ err: exception, code: outage.code, method: request.method, path: request.path }, outage.message);
      if (outage.kind === 'unavailable') response.setHeader('Retry-After', '1');
      sendError(response, statusByKind[outage.kind], { code: outage.code, message: outage.message });
      return;
    }
    this.logger.error({ err: exception, method: request.method, path: request.path }, 'unhandled error');
    sendError(response, 500, { code: 'INTERNAL_ERROR', message: 'an unexpected error occurred; it has been logged' });
  }
}
