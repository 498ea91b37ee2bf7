import { open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { SliceFormat } from '@kura/schema';
import { describeNetworkError, KuraApiError, KuraError, KuraNetworkError } from './errors.js';
import { retryDelayMs, sleep, type HttpClient } from './http.js';

/** Formats the server serves with Range (they are files with a known length): a download of them resumes. */
const RESUMABLE_FORMATS: ReadonlySet<string> = new Set(['arrow-file', 'parquet', 'lerobot', 'lerobot-v2.1', 'mcap']);

interface PartialDownload {
  url: string;
  etag: string;
}

export interface DownloadProgress {
  bytes: number;
  total: number | undefined;
}

/**
 * Slice data to a file. The bytes go to `<out>.part` and are renamed into place when complete; a
 * broken connection is retried (from where it broke, for formats served with Range), and a later
 * run of the same download continues the `.part` when the server says it is the same content (ETag).
 */
export class Downloads {
  constructor(
    private readonly http: HttpClient,
    private readonly retries = 4,
  ) {}

  async sliceToFile(
    sliceId: string,
    format: SliceFormat,
    out: string,
    options: { onProgress?: (progress: DownloadProgress) => void } = {},
  ): Promise<{ bytes: number; resumedFrom: number }> {
    const path = `/v1/slices/${encodeURIComponent(sliceId)}/data?format=${format}`;
    const partPath = `${out}.part`;
    const metaPath = `${out}.part.json`;
    const resumable = RESUMABLE_FORMATS.has(format);
    let resumedFrom = 0;
    let received = 0;
    let lastTotal: number | undefined;
    for (let attempt = 0; ; attempt++) {
      const meta = resumable ? await readMeta(metaPath, path) : undefined;
      const have = meta ? ((await stat(partPath).catch(() => undefined))?.size ?? 0) : 0;
      const headers: Record<string, string> = meta && have > 0 ? { Range: `bytes=${have}-`, 'If-Range': meta.etag } : {};
      let response: Response;
      try {
        response = await this.http.send('GET', path, { headers });
      } catch (error) {
        // The part is already whole: the server has nothing past its end.
        if (error instanceof KuraApiError && error.status === 416 && meta) return finish(partPath, metaPath, out, have, resumedFrom);
        // Gone after the bytes began to arrive: what arrived is kept for the next run.
        if (error instanceof KuraNetworkError && attempt > 0) throw interrupted(error.cause, received, lastTotal, resumable);
        throw error;
      }
      const continuing = response.status === 206;
      const start = continuing ? have : 0;
      if (attempt === 0) resumedFrom = start;
      const total = totalOf(response, start);
      const etag = response.headers.get('etag');
      if (resumable && etag) await writeFile(metaPath, JSON.stringify({ url: path, etag } satisfies PartialDownload));
      let bytes = start;
      options.onProgress?.({ bytes, total });
      try {
        // Each chunk is on disk before the next is read, so a break keeps every byte counted:
        // a stream in between would drop what it still buffered (all of it when the break comes
        // before the file has opened), and the next run would start over.
        const file = await open(partPath, continuing ? 'a' : 'w');
        try {
          for await (const chunk of Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>)) {
            await writeFully(file, chunk as Uint8Array);
            bytes += (chunk as Uint8Array).byteLength;
            options.onProgress?.({ bytes, total });
          }
        } finally {
          await file.close();
        }
        if (total !== undefined && bytes < total) throw new Error(`the connection ended after ${bytes} of ${total} bytes`);
        return await finish(partPath, metaPath, out, bytes, resumedFrom);
      } catch (error) {
        received = bytes;
        lastTotal = total;
        if (attempt < this.retries) {
          await sleep(retryDelayMs({ retries: this.retries, baseDelayMs: 250, maxDelayMs: 4000 }, attempt + 1));
          continue;
        }
        throw interrupted(error, bytes, total, resumable);
      }
    }
  }
}

async function writeFully(file: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let offset = 0; offset < chunk.byteLength;) offset += (await file.write(chunk, offset, chunk.byteLength - offset)).bytesWritten;
}

function interrupted(cause: unknown, bytes: number, total: number | undefined, resumable: boolean): KuraError {
  const kept = resumable ? `; run the same command again to continue from byte ${bytes}` : '';
  return new KuraError(
    'DOWNLOAD_INTERRUPTED',
    `download interrupted after ${bytes}${total !== undefined ? ` of ${total}` : ''} bytes: ${describeNetworkError(cause)}${kept}`,
    { cause },
  );
}

function totalOf(response: Response, start: number): number | undefined {
  const range = /\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
  if (range) return Number(range[1]);
  const length = response.headers.get('content-length');
  return length === null ? undefined : start + Number(length);
}

async function readMeta(metaPath: string, url: string): Promise<PartialDownload | undefined> {
  try {
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as PartialDownload;
    return meta.url === url && typeof meta.etag === 'string' ? meta : undefined;
  } catch {
    return undefined;
  }
}

async function finish(partPath: string, metaPath: string, out: string, bytes: number, resumedFrom: number) {
  await rename(partPath, out);
  await rm(metaPath, { force: true });
  return { bytes, resumedFrom };
}
