import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { formatNames, type FormatName, type ImportIssue } from '@kura/formats';
import type { ListQuery, Page } from '@kura/schema';
import { ownsOrAdmin, requireRole, type Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { newId } from '../common/ids.js';
import { decodeCursor, toPage } from '../common/pagination.js';
import { DatasetsService } from '../datasets/datasets.service.js';
import { AppError } from '../errors/app-error.js';
import { JobsService } from '../jobs/jobs.service.js';
import { ingestJobId } from '../ingest/ingest-upload.job.js';
import { uploadChecksumMismatch, uploadEmpty, uploadNotFound, uploadNotOwned, uploadTooLarge } from './uploads.errors.js';
import { UploadsRepository, type UploadRecord, type UploadStatus } from './uploads.repository.js';

/** An upload as the API shows it (API.md). */
export interface UploadView {
  id: string;
  datasetId: string;
  status: UploadStatus;
  progress: number;
  format: string | null;
  fileName: string | null;
  sha256: string | null;
  bytes: number;
  episodeCount: number | null;
  stepCount: number | null;
  version: number | null;
  errors: ImportIssue[];
  warnings: ImportIssue[];
  createdAt: string;
  finishedAt: string | null;
}

export interface CreateUploadParams {
  datasetId: string;
  body: Readable;
  format?: FormatName | undefined;
  fileName?: string | undefined;
  /** Hex sha256 the client computed; the upload is refused when the body differs. */
  expectedSha256?: string | undefined;
  idempotencyKey?: string | undefined;
  featureMap?: Record<string, string> | undefined;
  maxBytes: number;
}

@Injectable()
export class UploadsService implements OnApplicationBootstrap {
  constructor(
    private readonly uploads: UploadsRepository,
    private readonly datasets: DatasetsService,
    private readonly jobs: JobsService,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
  ) {}

  /**
   * Streams the body into the blob store while hashing it, then records the upload and queues its
   * ingest. Returns once the bytes are durable. A repeated Idempotency-Key returns the first upload.
   */
  async create(principal: Principal, params: CreateUploadParams): Promise<{ upload: UploadView; created: boolean }> {
    requireRole(principal, ['operator'], 'upload episodes');
    const dataset = await this.datasets.findVisible(principal, params.datasetId);
    if (!ownsOrAdmin(principal, dataset.ownerKeyId)) throw uploadNotOwned(dataset.id);
    if (params.idempotencyKey) {
      const existing = await this.uploads.findByIdempotencyKey(principal.keyId, params.idempotencyKey);
      if (existing) {
        params.body.resume();
        return { upload: toView(existing), created: false };
      }
    }

    const id = newId('upl');
    const blobKey = `datasets/${dataset.id}/uploads/${id}/raw`;
    const hash = createHash('sha256');
    let bytes = 0;
    let tooLarge = false;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        if (bytes > params.maxBytes) {
          tooLarge = true;
          callback(uploadTooLarge(params.maxBytes));
          return;
        }
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    params.body.on('error', (error) => counter.destroy(error));
    try {
      await this.blobs.put({ key: blobKey, body: params.body.pipe(counter) });
    } catch (error) {
      if (tooLarge) throw uploadTooLarge(params.maxBytes);
      throw new AppError({ code: 'UPLOAD_INTERRUPTED', kind: 'invalid', message: `the upload body could not be read to the end: ${(error as Error).message}`, cause: error });
    }
    const sha256 = hash.digest('hex');
    if (bytes === 0 || (params.expectedSha256 && params.expectedSha256.toLowerCase() !== sha256)) {
      await this.blobs.delete({ key: blobKey });
      throw bytes === 0 ? uploadEmpty() : uploadChecksumMismatch(params.expectedSha256!.toLowerCase(), sha256);
    }

    const { record, created } = await this.uploads.create({
      id,
      datasetId: dataset.id,
      ownerKeyId: principal.keyId,
      requestedFormat: params.format ?? null,
      fileName: params.fileName ?? null,
      blobKey,
      bytes: BigInt(bytes),
      sha256,
      idempotencyKey: params.idempotencyKey ?? null,
      featureMap: params.featureMap ?? null,
    });
    if (!created) {
      // Lost a race with the same idempotency key: keep the first upload only.
      await this.blobs.delete({ key: blobKey });
      return { upload: toView(record), created: false };
    }
    await this.jobs.enqueue('uploads.ingest', { uploadId: id }, { id: ingestJobId(id) });
    return { upload: toView(record), created: true };
  }

  async get(principal: Principal, id: string): Promise<UploadView> {
    requireRole(principal, ['operator'], 'read uploads');
    const upload = await this.uploads.findById(id);
    if (!upload) throw uploadNotFound(id);
    // Uploads belong to their dataset: whoever may not see it may not see them.
    await this.datasets.findVisible(principal, upload.datasetId).catch(() => {
      throw uploadNotFound(id);
    });
    return toView(upload);
  }

  async list(principal: Principal, datasetId: string, query: ListQuery & { status?: UploadStatus | undefined }): Promise<Page<UploadView>> {
    requireRole(principal, ['operator'], 'list uploads');
    await this.datasets.findVisible(principal, datasetId);
    const rows = await this.uploads.list({ datasetId, ...(query.status ? { status: query.status } : {}), afterId: decodeCursor(query.cursor), take: query.limit + 1 });
    return toPage(rows, query.limit, toView);
  }

  /** An upload recorded just before a crash may lack its ingest job: queue every unfinished one again (idempotent). */
  async onApplicationBootstrap(): Promise<void> {
    for (const id of await this.uploads.findUnfinishedIds()) await this.jobs.enqueue('uploads.ingest', { uploadId: id }, { id: ingestJobId(id) });
  }
}

export const isFormatName = (value: string): value is FormatName => (formatNames as readonly string[]).includes(value);

export function toView(upload: UploadRecord): UploadView {
  return {
    id: upload.id,
    datasetId: upload.datasetId,
    status: upload.status,
    progress: upload.progress,
    format: upload.format ?? upload.requestedFormat,
    fileName: upload.fileName,
    sha256: upload.sha256,
    bytes: Number(upload.bytes),
    episodeCount: upload.episodeCount,
    stepCount: upload.stepCount === null ? null : Number(upload.stepCount),
    version: upload.version,
    errors: upload.errors,
    warnings: upload.warnings,
    createdAt: upload.createdAt.toISOString(),
    finishedAt: upload.finishedAt?.toISOString() ?? null,
  };
}
