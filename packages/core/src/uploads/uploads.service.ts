import { hashBody, storeBody } from '../blobs/store-body.js';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { FormatName } from '@kura/formats';
import type { ListQuery, McapInspection, MultipartPlan, Page, UploadStatus, UploadView } from '@kura/schema';
import { ownsOrAdmin, requireRole, type Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { newId } from '../common/ids.js';
import { decodeCursor, toPage } from '../common/pagination.js';
import { DatasetsService } from '../datasets/datasets.service.js';
import { AppError } from '../errors/app-error.js';
import { JobsService } from '../jobs/jobs.service.js';
import { ingestJobId } from './ingest/ingest-upload.job.js';
import { IngestService, type ArrivingBody, type UploadToConvert } from './ingest/ingest.service.js';
import {
  idempotencyKeyReused,
  uploadChecksumMismatch,
  uploadEmpty,
  uploadInterrupted,
  uploadNotFound,
  uploadNotMultipart,
  uploadNotOwned,
  uploadNotWaitingForParts,
  uploadPartNotFound,
  uploadPartSize,
  uploadPartsIncomplete,
  uploadPartsInvalid,
  uploadTooLarge,
} from './uploads.errors.js';
import { UploadsRepository, type MultipartState, type UploadRecord } from './uploads.repository.js';
import { meterBytes } from '../common/byte-meter.js';

const MIN_PART_SIZE = 5 * 1024 * 1024;
const DEFAULT_PART_SIZE = 64 * 1024 * 1024;
const MAX_PARTS = 10_000;
const PRESIGNED_URL_SECONDS = 24 * 3600;

export interface CreateUploadParams {
  datasetId: string;
  body: Readable;
  format?: FormatName | undefined;
  fileName?: string | undefined;
  /** Hex sha256 the client computed; the upload is refused when the body differs. */
  expectedSha256?: string | undefined;
  idempotencyKey?: string | undefined;
  featureMap?: Record<string, string> | undefined;
  /** Features to leave out, named as the upload names them (before featureMap); their data is never read. */
  dropFeatures?: string[] | undefined;
  /** The format's options, already checked by its options schema (the API does); they need `format`. */
  options?: Record<string, unknown> | undefined;
  maxBytes: number;
  /** The body's size as its request declares it (Content-Length), when it does. */
  declaredBytes?: number | undefined;
}

@Injectable()
export class UploadsService implements OnApplicationBootstrap {
  constructor(
    private readonly uploads: UploadsRepository,
    private readonly datasets: DatasetsService,
    private readonly jobs: JobsService,
    private readonly ingest: IngestService,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
  ) {}

  /**
   * Streams the body into the blob store while hashing it, then records the upload and queues its
   * ingest. Returns once the bytes are durable. A repeated Idempotency-Key returns the first upload
   * when the body and dataset are the same, else 409 IDEMPOTENCY_KEY_REUSED.
   */
  async create(principal: Principal, params: CreateUploadParams): Promise<{ upload: UploadView; created: boolean }> {
    requireRole(principal, ['operator'], 'upload episodes');
    const dataset = await this.datasets.findVisible(principal, params.datasetId);
    if (!ownsOrAdmin(principal, dataset.ownerKeyId)) throw uploadNotOwned(dataset.id);
    return this.store({ ...params, datasetId: dataset.id, ownerKeyId: principal.keyId });
  }

  /**
   * The upload path past authorisation, for uploads Kura makes itself (a session becoming an
   * episode goes through the same ingest as any upload).
   */
  async store(params: CreateUploadParams & { ownerKeyId: string }): Promise<{ upload: UploadView; created: boolean }> {
    if (params.idempotencyKey) {
      const existing = await this.uploads.findByIdempotencyKey(params.ownerKeyId, params.idempotencyKey);
      if (existing) {
        await this.checkRepeatedBody(existing, { ...params, idempotencyKey: params.idempotencyKey });
        return { upload: toView(existing), created: false };
      }
    }

    const id = newId('upl');
    const toConvert: UploadToConvert = {
      id,
      datasetId: params.datasetId,
      fileName: params.fileName ?? null,
      requestedFormat: params.format ?? null,
      featureMap: params.featureMap ?? null,
      dropFeatures: params.dropFeatures ?? [],
      options: params.options ?? null,
    };
    // Converted as it arrives where it can be; else a spare child is readied meanwhile.
    const arriving = await this.ingest.receiveArriving(toConvert, params.declaredBytes);
    if (!arriving) this.ingest.prepareForUpload();
    let queued = false;
    try {
      const stored = await this.storeAndQueue(params, toConvert, arriving);
      queued = stored.created;
      return stored;
    } finally {
      // Refused, broken off or not queued: the conversion has nobody to take it.
      if (!queued) await arriving?.abandon();
    }
  }

  /** Stores the body, records the upload and queues its ingest (see store). */
  private async storeAndQueue(
    params: CreateUploadParams & { ownerKeyId: string },
    toConvert: UploadToConvert,
    arriving: ArrivingBody | undefined,
  ): Promise<{ upload: UploadView; created: boolean }> {
    const { id } = toConvert;
    const blobKey = `datasets/${params.datasetId}/uploads/${id}/raw`;
    const { bytes, sha256 } = await storeBody({
      blobs: this.blobs,
      key: blobKey,
      body: params.body,
      maxBytes: params.maxBytes,
      tooLarge: () => uploadTooLarge(params.maxBytes),
      interrupted: uploadInterrupted,
      ...(arriving ? { tee: (chunk: Buffer) => arriving.write(chunk), onLocalFile: (path: string) => arriving.share(path) } : {}),
    });
    if (bytes === 0 || (params.expectedSha256 && params.expectedSha256.toLowerCase() !== sha256)) {
      await this.blobs.delete({ key: blobKey });
      throw bytes === 0 ? uploadEmpty() : uploadChecksumMismatch(params.expectedSha256!.toLowerCase(), sha256);
    }

    const { record, created } = await this.uploads.create({
      ...toConvert,
      ownerKeyId: params.ownerKeyId,
      blobKey,
      bytes: BigInt(bytes),
      sha256,
      idempotencyKey: params.idempotencyKey ?? null,
    });
    if (!created) {
      // Lost a race with the same idempotency key: keep the first upload only.
      await this.blobs.delete({ key: blobKey });
      const difference = differenceFrom(record, { datasetId: params.datasetId, bytes, sha256 });
      if (difference && params.idempotencyKey)
        throw idempotencyKeyReused({ idempotencyKey: params.idempotencyKey, uploadId: record.id, difference });
      return { upload: toView(record), created: false };
    }
    // Before the job is queued: the job looks for the conversion when it starts.
    await arriving?.arrived();
    await this.jobs.enqueue('uploads.ingest', { uploadId: id }, { id: ingestJobId(id) });
    return { upload: toView(record), created: true };
  }

  /**
   * Whether a request repeating an Idempotency-Key repeats the first upload: same dataset, same body.
   * The body's sha256 is known only once it is read, so it is read to the end and hashed, but not
   * stored; a Content-SHA256 header that already differs spares that.
   */
  private async checkRepeatedBody(existing: UploadRecord, params: CreateUploadParams & { idempotencyKey: string }): Promise<void> {
    const refuse = (difference: string) =>
      idempotencyKeyReused({ idempotencyKey: params.idempotencyKey, uploadId: existing.id, difference });
    const declared = params.expectedSha256?.toLowerCase();
    const knownDifference =
      differenceFrom(existing, { datasetId: params.datasetId }) ??
      (declared !== undefined ? differenceFrom(existing, { sha256: declared }) : undefined);
    if (knownDifference) {
      params.body.resume();
      throw refuse(knownDifference);
    }
    const { bytes, sha256 } = await hashBody({
      body: params.body,
      maxBytes: params.maxBytes,
      tooLarge: () => uploadTooLarge(params.maxBytes),
      interrupted: uploadInterrupted,
    });
    const difference = differenceFrom(existing, { bytes, sha256 });
    if (difference) throw refuse(difference);
  }

  /**
   * Starts a resumable upload of `bytes` bytes: replies with one URL per part (presigned object-store
   * URLs in services mode, API URLs in embedded mode). Parts may be sent in any order, again after
   * an interruption, and in parallel; `complete` then checks the size and sha256 of the whole.
   */
  async startMultipart(
    principal: Principal,
    params: Omit<CreateUploadParams, 'body' | 'maxBytes' | 'expectedSha256'> & {
      bytes: number;
      sha256: string;
      partSize?: number | undefined;
      maxBytes: number;
    },
  ): Promise<MultipartPlan> {
    requireRole(principal, ['operator'], 'upload episodes');
    const dataset = await this.datasets.findVisible(principal, params.datasetId);
    if (!ownsOrAdmin(principal, dataset.ownerKeyId)) throw uploadNotOwned(dataset.id);
    if (params.bytes > params.maxBytes) throw uploadTooLarge(params.maxBytes);
    const partSize = Math.max(params.partSize ?? DEFAULT_PART_SIZE, Math.ceil(params.bytes / MAX_PARTS), MIN_PART_SIZE);
    if (params.idempotencyKey) {
      const existing = await this.uploads.findByIdempotencyKey(principal.keyId, params.idempotencyKey);
      if (existing) {
        // A multipart start declares its size and sha256, so a different one is known at once.
        const difference = differenceFrom(existing, { datasetId: dataset.id, bytes: params.bytes, sha256: params.sha256.toLowerCase() });
        if (difference) throw idempotencyKeyReused({ idempotencyKey: params.idempotencyKey, uploadId: existing.id, difference });
        return this.plan(existing);
      }
    }
    this.ingest.prepareForUpload();
    const id = newId('upl');
    const blobKey = `datasets/${dataset.id}/uploads/${id}/raw`;
    const { uploadId: blobUploadId } = await this.blobs.createMultipartUpload({ key: blobKey });
    const { record } = await this.uploads.create({
      id,
      datasetId: dataset.id,
      ownerKeyId: principal.keyId,
      requestedFormat: params.format ?? null,
      fileName: params.fileName ?? null,
      blobKey,
      bytes: BigInt(params.bytes),
      sha256: params.sha256.toLowerCase(),
      idempotencyKey: params.idempotencyKey ?? null,
      featureMap: params.featureMap ?? null,
      dropFeatures: params.dropFeatures ?? [],
      options: params.options ?? null,
      status: 'uploading',
      multipart: { blobUploadId, partSize, expectedBytes: params.bytes, expectedSha256: params.sha256.toLowerCase() },
    });
    return this.plan(record);
  }

  /** One part of a resumable upload, through the API (embedded mode). Sending a part again replaces it. */
  async putPart(principal: Principal, id: string, partNumber: number, body: Readable): Promise<{ partNumber: number; etag: string }> {
    const { upload, multipart } = await this.uploading(principal, id);
    const part = partsOf(multipart).find((candidate) => candidate.partNumber === partNumber);
    if (!part) {
      body.resume();
      throw uploadPartNotFound(partNumber, partsOf(multipart).length);
    }
    const metered = meterBytes({
      body,
      limit: part.bytes,
      tooLarge: () => uploadPartSize(partNumber, part.bytes, 'more'),
    });
    const stored = await this.blobs
      .uploadPart({ key: upload.blobKey, uploadId: multipart.blobUploadId, partNumber, body: metered.stream, bytes: part.bytes })
      .catch((error: unknown) => {
        if (error instanceof AppError) throw error;
        throw uploadPartSize(partNumber, part.bytes, metered.bytes(), error);
      });
    if (metered.bytes() !== part.bytes) throw uploadPartSize(partNumber, part.bytes, metered.bytes());
    return stored;
  }

  /**
   * Joins the parts, checks the whole against the declared size and sha256, and queues the ingest.
   * A mismatch fails the upload (nothing is kept) with UPLOAD_CHECKSUM_MISMATCH.
   */
  async completeMultipart(principal: Principal, id: string, parts: Array<{ partNumber: number; etag: string }>): Promise<UploadView> {
    const { upload, multipart } = await this.uploading(principal, id);
    const expected = partsOf(multipart).length;
    const numbers = new Set(parts.map((part) => part.partNumber));
    if (numbers.size !== parts.length || parts.length !== expected || [...numbers].some((number) => number < 1 || number > expected)) {
      throw uploadPartsIncomplete(expected, parts.length);
    }
    try {
      await this.blobs.completeMultipartUpload({ key: upload.blobKey, uploadId: multipart.blobUploadId, parts });
    } catch (error) {
      throw uploadPartsInvalid(error);
    }
    // The object store cannot tell the sha256 of a multipart object: read it back once.
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of await this.blobs.get({ key: upload.blobKey })) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    const sha256 = hash.digest('hex');
    if (bytes !== multipart.expectedBytes || sha256 !== multipart.expectedSha256) {
      await this.blobs.delete({ key: upload.blobKey });
      const error = uploadChecksumMismatch(multipart.expectedSha256, sha256);
      await this.uploads.markFailed(
        upload.id,
        [{ code: error.code, message: `${error.message} (${bytes} of ${multipart.expectedBytes} bytes)`, location: {} }],
        [],
      );
      throw error;
    }
    await this.uploads.markReceived(upload.id, BigInt(bytes), sha256);
    await this.jobs.enqueue('uploads.ingest', { uploadId: upload.id }, { id: ingestJobId(upload.id) });
    return this.get(principal, id);
  }

  private async uploading(principal: Principal, id: string): Promise<{ upload: UploadRecord; multipart: MultipartState }> {
    requireRole(principal, ['operator'], 'upload episodes');
    const upload = await this.uploads.findById(id);
    if (!upload || !ownsOrAdmin(principal, upload.ownerKeyId)) throw uploadNotFound(id);
    if (upload.status !== 'uploading' || !upload.multipart) {
      throw uploadNotWaitingForParts(id, upload.status);
    }
    return { upload, multipart: upload.multipart };
  }

  private async plan(upload: UploadRecord): Promise<MultipartPlan> {
    if (!upload.multipart) throw uploadNotMultipart(upload.id);
    const multipart = upload.multipart;
    const presign = this.blobs.presignUploadPart?.bind(this.blobs);
    const parts = await Promise.all(
      partsOf(multipart).map(async (part) => {
        const url = presign
          ? await presign({
              key: upload.blobKey,
              uploadId: multipart.blobUploadId,
              partNumber: part.partNumber,
              expiresInSeconds: PRESIGNED_URL_SECONDS,
            })
          : `/v1/uploads/${upload.id}/parts/${part.partNumber}`;
        return { ...part, url, viaApi: !presign };
      }),
    );
    return { upload: toView(upload), partSize: multipart.partSize, parts, completeUrl: `/v1/uploads/${upload.id}/complete` };
  }

  async get(principal: Principal, id: string): Promise<UploadView> {
    requireRole(principal, ['operator'], 'read uploads');
    const upload = await this.uploads.findById(id);
    if (!upload) throw uploadNotFound(id);
    // Uploads belong to their dataset: whoever may not see it may not see them.
    await this.datasets.findVisible(principal, upload.datasetId).catch((error: unknown) => {
      // Only "you may not see it" becomes not found; a database that failed to answer says so.
      throw error instanceof AppError && (error.kind === 'not_found' || error.kind === 'forbidden') ? uploadNotFound(id) : error;
    });
    return toView(upload);
  }

  async list(principal: Principal, datasetId: string, query: ListQuery & { status?: UploadStatus | undefined }): Promise<Page<UploadView>> {
    requireRole(principal, ['operator'], 'list uploads');
    await this.datasets.findVisible(principal, datasetId);
    const rows = await this.uploads.list({
      datasetId,
      ...(query.status ? { status: query.status } : {}),
      afterId: decodeCursor(query.cursor, 'upl'),
      take: query.limit + 1,
    });
    return toPage(rows, query.limit, toView);
  }

  /** An upload recorded just before a crash may lack its ingest job: queue every unfinished one again (idempotent). */
  async onApplicationBootstrap(): Promise<void> {
    for (const id of await this.uploads.findUnfinishedIds())
      await this.jobs.enqueue('uploads.ingest', { uploadId: id }, { id: ingestJobId(id) });
  }
}

function partsOf(multipart: MultipartState): Array<{ partNumber: number; offset: number; bytes: number }> {
  const count = Math.max(1, Math.ceil(multipart.expectedBytes / multipart.partSize));
  return Array.from({ length: count }, (_, index) => ({
    partNumber: index + 1,
    offset: index * multipart.partSize,
    bytes: Math.min(multipart.partSize, multipart.expectedBytes - index * multipart.partSize),
  }));
}

export function toView(upload: UploadRecord): UploadView {
  return {
    id: upload.id,
    datasetId: upload.datasetId,
    status: upload.status,
    progress: upload.progress,
    format: upload.format ?? upload.requestedFormat,
    options: upload.options,
    fileName: upload.fileName,
    sha256: upload.sha256,
    bytes: Number(upload.bytes),
    episodeCount: upload.episodeCount,
    stepCount: upload.stepCount === null ? null : Number(upload.stepCount),
    version: upload.version,
    errors: upload.errors,
    warnings: upload.warnings,
    inspection: upload.status === 'needs_mapping' ? ((upload.errors[0]?.details?.inspection as McapInspection | undefined) ?? null) : null,
    createdAt: upload.createdAt.toISOString(),
    finishedAt: upload.finishedAt?.toISOString() ?? null,
  };
}

/** How a request under the same Idempotency-Key differs from the upload the key first made, if it does. */
function differenceFrom(upload: UploadRecord, request: { datasetId?: string; bytes?: number; sha256?: string }): string | undefined {
  if (request.datasetId !== undefined && request.datasetId !== upload.datasetId)
    return `into dataset ${upload.datasetId}, not ${request.datasetId}`;
  if (request.sha256 !== undefined && upload.sha256 !== null && request.sha256 !== upload.sha256)
    return `whose body's sha256 is ${upload.sha256}, not ${request.sha256}`;
  if (request.bytes !== undefined && BigInt(request.bytes) !== upload.bytes)
    return `whose body has ${upload.bytes} bytes, not ${request.bytes}`;
  return undefined;
}
