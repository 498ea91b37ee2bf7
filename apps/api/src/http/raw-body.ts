import type { Request } from 'express';
import { AppError } from '@kura/core';

/**
 * Reads a small raw body (e.g. a URDF) up to `limit` bytes. Refuses early on a declared
 * Content-Length over the limit, and stops reading as soon as the limit is passed.
 */
export async function readRawBody(request: Request, params: { limit: number; what: string }): Promise<Buffer> {
  const tooLarge = () =>
    new AppError({
      code: 'PAYLOAD_TOO_LARGE',
      kind: 'too_large',
      message: `the ${params.what} is larger than ${params.limit} bytes`,
      details: { limit: params.limit },
    });
  if (Number(request.headers['content-length'] ?? 0) > params.limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    bytes += buffer.length;
    if (bytes > params.limit) {
      // Stop the upload rather than read the rest of an oversized body.
      request.unpipe();
      throw tooLarge();
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}
