import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFinishedUpload, type MultipartPlan, type UploadView } from '@kura/schema';
import { KuraError } from './errors.js';
import type { HttpClient } from './http.js';
import { poll } from './poll.js';
import { describeSource, sourceOf, type UploadSource } from './sources.js';
import { counted } from './streams.js';

export type UploadPhase = 'reading' | 'sending';

export interface UploadOptions {
  format?: string | undefined;
  /** The format's per-upload options (the API's `options`); they need `format`. */
  options?: Record<string, unknown> | undefined;
  /** Bytes from which a file goes in resumable parts (default 64 MiB). */
  multipartThreshold?: number | undefined;
  /** Part size of resumable uploads (the server's minimum is 5 MiB; default the server's, 64 MiB). */
  partSize?: number | undefined;
  /** Where resumable uploads remember their sent parts, so a new run sends only the rest. */
  stateDirectory?: string | undefined;
  /** Told while the source is read (size and sha256) and while its bytes are sent. */
  onProgress?: ((progress: { phase: UploadPhase; bytes: number; total: number | undefined }) => void) | undefined;
}

interface PartState {
  uploadId: string;
  sha256: string;
  etags: Record<string, string>;
}

const DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024;

/** Uploads of files and folders: one request for small ones, resumable parts for large ones. */
export class Uploads {
  constructor(private readonly http: HttpClient) {}

  get(id: string): Promise<UploadView> {
    return this.http.json('GET', `/v1/uploads/${encodeURIComponent(id)}`);
  }

  /** Polls until the upload is published, failed or needs a mapping; `onValue` sees each status on the way. */
  wait(id: string, options: { intervalMs?: number; onValue?: (upload: UploadView) => void } = {}): Promise<UploadView> {
    return poll(
      () => this.get(id),
      (upload) => isFinishedUpload(upload.status),
      { ...options, timeoutMs: Number.POSITIVE_INFINITY },
    );
  }

  /**
   * Uploads a file, or a folder as a .tar made on the fly, into a dataset. The bytes are read once
   * for their size and sha256 (sent as Content-SHA256, and with the dataset as the Idempotency-Key,
   * so a repeat after a lost reply finds the same upload). Larger than `multipartThreshold`, the
   * upload goes in parts that survive a dropped connection: a new run sends only the missing ones.
   */
  async uploadPath(datasetId: string, path: string, options: UploadOptions = {}): Promise<UploadView> {
    const source = await sourceOf(path);
    const threshold = options.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD;
    const reading = (bytes: number) => options.onProgress?.({ phase: 'reading', bytes, total: undefined });
    if (source.path) {
      const described = await describeSource(source, { onBytes: reading });
      return described.bytes > threshold
        ? this.multipart(datasetId, { ...source, path: source.path }, described, options)
        : this.single(datasetId, source, described, options);
    }
    // A folder: its archive is made twice when small (hash, then send), and kept in a temporary file when large.
    const scratch = await mkdtemp(join(tmpdir(), 'kura-upload-'));
    try {
      const spool = join(scratch, source.fileName);
      const described = await describeSource(source, { onBytes: reading, spoolTo: spool });
      if (described.bytes <= threshold) return await this.single(datasetId, source, described, options);
      return await this.multipart(
        datasetId,
        { fileName: source.fileName, path: spool, open: () => createReadStream(spool) },
        described,
        options,
      );
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  private single(datasetId: string, source: UploadSource, described: { bytes: number; sha256: string }, options: UploadOptions) {
    return this.http.json<UploadView>('POST', `/v1/datasets/${encodeURIComponent(datasetId)}/uploads`, {
      query: {
        format: options.format,
        fileName: source.fileName,
        options: options.options === undefined ? undefined : JSON.stringify(options.options),
      },
      headers: { 'Content-SHA256': described.sha256, 'Idempotency-Key': idempotencyKey(datasetId, described.sha256, options) },
      body: {
        stream: () => counted(source.open(), (bytes) => options.onProgress?.({ phase: 'sending', bytes, total: described.bytes })),
        length: described.bytes,
      },
      idempotent: true,
    });
  }

  private async multipart(
    datasetId: string,
    source: UploadSource & { path: string },
    described: { bytes: number; sha256: string },
    options: UploadOptions,
  ): Promise<UploadView> {
    const plan = await this.http.json<MultipartPlan>('POST', `/v1/datasets/${encodeURIComponent(datasetId)}/uploads`, {
      body: {
        json: {
          multipart: true,
          bytes: described.bytes,
          sha256: described.sha256,
          fileName: source.fileName,
          ...(options.format ? { format: options.format } : {}),
          ...(options.partSize ? { partSize: options.partSize } : {}),
          ...(options.options !== undefined ? { options: options.options } : {}),
        },
      },
      headers: { 'Idempotency-Key': idempotencyKey(datasetId, described.sha256, options) },
      idempotent: true,
    });
    // A repeat of an upload whose parts were all sent and joined: nothing left to do.
    if (plan.upload.status !== 'uploading') return plan.upload;
    const statePath = options.stateDirectory ? join(options.stateDirectory, `${plan.upload.id}.json`) : undefined;
    const state = (statePath ? await readState(statePath, plan.upload.id, described.sha256) : undefined) ?? {
      uploadId: plan.upload.id,
      sha256: described.sha256,
      etags: {},
    };
    let sent = plan.parts.filter((part) => state.etags[part.partNumber]).reduce((sum, part) => sum + part.bytes, 0);
    options.onProgress?.({ phase: 'sending', bytes: sent, total: described.bytes });
    for (const part of plan.parts) {
      if (state.etags[part.partNumber]) continue;
      const base = sent;
      const response = await this.http.send('PUT', part.url, {
        absolute: !part.viaApi,
        body: {
          stream: () =>
            counted(createReadStream(source.path, { start: part.offset, end: part.offset + part.bytes - 1 }), (bytes) =>
              options.onProgress?.({ phase: 'sending', bytes: base + bytes, total: described.bytes }),
            ),
          length: part.bytes,
        },
      });
      const etag = response.headers.get('etag') ?? ((await response.json().catch(() => ({}))) as { etag?: string }).etag;
      if (!etag) throw new KuraError('UPLOAD_PART_NO_ETAG', `part ${part.partNumber} was stored but its ETag did not come back`);
      await response.body?.cancel().catch(() => undefined);
      state.etags[part.partNumber] = etag;
      sent += part.bytes;
      if (statePath) await saveState(statePath, state);
    }
    const upload = await this.http.json<UploadView>('POST', plan.completeUrl, {
      body: { json: { parts: plan.parts.map((part) => ({ partNumber: part.partNumber, etag: state.etags[part.partNumber]! })) } },
      idempotent: true,
    });
    if (statePath) await rm(statePath, { force: true });
    return upload;
  }
}

/** The same bytes into the same dataset (with the same format and options) are the same upload. */
const idempotencyKey = (datasetId: string, sha256: string, options: Pick<UploadOptions, 'format' | 'options'>) =>
  `sdk:${datasetId}:${options.format ?? 'detect'}:${sha256}${options.options === undefined ? '' : `:${optionsDigest(options.options)}`}`;

const optionsDigest = (options: Record<string, unknown>) => createHash('sha256').update(JSON.stringify(options)).digest('hex').slice(0, 16);

async function readState(path: string, uploadId: string, sha256: string): Promise<PartState | undefined> {
  try {
    const state = JSON.parse(await readFile(path, 'utf8')) as PartState;
    return state.uploadId === uploadId && state.sha256 === sha256 ? state : undefined;
  } catch {
    return undefined;
  }
}

async function saveState(path: string, state: PartState): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  await writeFile(path, JSON.stringify(state), { mode: 0o600 });
}
