import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';

/** What a service hands over for a file-like reply: unchanged (304), or bytes, whole or one range. */
export type ByteReply =
  | { kind: 'not-modified'; etag: string }
  | {
      kind: 'bytes';
      etag: string;
      contentType: string;
      /** Size of the whole file, when known before sending. */
      totalBytes: number | undefined;
      /** The inclusive span of a 206 reply. */
      range: { start: number; end: number } | undefined;
      body: Readable;
    };

/** A request header as one trimmed string (absent or repeated → undefined). */
export function header(request: Request, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value.trim() : undefined;
}

/**
 * Sends a ByteReply: ETag, 304, Content-Range/Length, HEAD without a body, and the bytes. `headers`
 * go on every reply, `bodyHeaders` only on one with bytes. Once the headers are out, a failure can only
 * cut the connection (the client sees a short read); `onEarlyEnd` says so in the log.
 */
export async function sendByteReply(
  request: Request,
  response: Response,
  reply: ByteReply,
  options: {
    acceptsRanges: boolean;
    headers?: Record<string, string>;
    bodyHeaders?: Record<string, string>;
    onEarlyEnd: (error: unknown) => void;
  },
): Promise<void> {
  // Nothing is sent before the body has its first bytes: a store that is down fails the request
  // with its code (503 BLOB_STORE_UNAVAILABLE) instead of a 200 cut off at once.
  if (reply.kind === 'bytes' && request.method !== 'HEAD') await untilFirstBytes(reply.body);
  response.setHeader('ETag', reply.etag);
  for (const [name, value] of Object.entries(options.headers ?? {})) response.setHeader(name, value);
  if (reply.kind === 'not-modified') {
    response.status(304).end();
    return;
  }
  response.setHeader('Content-Type', reply.contentType);
  for (const [name, value] of Object.entries(options.bodyHeaders ?? {})) response.setHeader(name, value);
  response.setHeader('Accept-Ranges', options.acceptsRanges ? 'bytes' : 'none');
  if (reply.range && reply.totalBytes !== undefined) {
    response.status(206);
    response.setHeader('Content-Range', `bytes ${reply.range.start}-${reply.range.end}/${reply.totalBytes}`);
    response.setHeader('Content-Length', String(reply.range.end - reply.range.start + 1));
  } else {
    response.status(200);
    if (reply.totalBytes !== undefined) response.setHeader('Content-Length', String(reply.totalBytes));
  }
  if (request.method === 'HEAD') {
    reply.body.destroy();
    response.end();
    return;
  }
  try {
    await pipeline(reply.body, response);
  } catch (error) {
    options.onEarlyEnd(error);
    response.destroy();
  }
}

/** Resolves once `body` has bytes to read or has ended; rejects with its error if it fails first. */
function untilFirstBytes(body: Readable): Promise<void> {
  if (body.readableLength > 0 || body.readableEnded) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const settle = (error?: Error) => {
      body.off('readable', onReady);
      body.off('end', onReady);
      body.off('error', settle);
      if (error) reject(error);
      else resolve();
    };
    const onReady = () => settle();
    body.on('readable', onReady);
    body.on('end', onReady);
    body.on('error', settle);
  });
}
