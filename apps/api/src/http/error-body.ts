import type { Response } from 'express';
import { statusByKind } from '@kura/core';
import type { ErrorBody } from '@kura/schema';

export { statusByKind };

/** Writes API.md's error body: `{ error: { code, message, details? } }`. */
export function sendError(response: Response, status: number, error: ErrorBody['error']): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  drainRefusedBody(response);
  const body: ErrorBody = { error: error.details ? error : { code: error.code, message: error.message } };
  if (status === 401) response.setHeader('WWW-Authenticate', 'Bearer realm="kura"');
  // Quota and rate refusals say when to come back (RFC 9110 Retry-After, in seconds).
  if (status === 429 && typeof error.details?.retryAfterS === 'number')
    response.setHeader('Retry-After', String(error.details.retryAfterS));
  response.status(status).json(body);
}

/** How long an error reply keeps reading (and dropping) a request body that is still arriving. */
const DRAIN_MS = 10_000;

/**
 * An error answered while the client is still sending its body (413 past a limit, a refusal before
 * reading): the rest is read and dropped for up to DRAIN_MS, then the connection is cut. Closing at
 * once makes the client's next write fail (EPIPE or a reset) before it has read the answer, so a
 * busy client saw a broken connection instead of the 413 with its code. That includes the close
 * Node does itself after the answer when the request said `Connection: close` (a client without
 * keep-alive): the connection is kept open as if it were a keep-alive one, and the client closes it.
 */
function drainRefusedBody(response: Response): void {
  const request = response.req as (Response['req'] & { complete?: boolean }) | undefined;
  if (!request || request.complete || request.readableEnded) return;
  response.removeHeader('Connection');
  response.shouldKeepAlive = true;
  request.resume();
  const cut = setTimeout(() => request.socket.destroy(), DRAIN_MS);
  cut.unref();
  request.once('end', () => clearTimeout(cut));
  request.once('close', () => clearTimeout(cut));
}
