import { Inject, Injectable } from '@nestjs/common';
import { MAPPING_REQUIRED, type ImportIssue, type UploadStatus } from '@kura/schema';
import { Prisma, PrismaClient } from '../database/prisma.js';

/** State of a resumable upload while its parts arrive. */
export interface MultipartState {
  blobUploadId: string;
  partSize: number;
  expectedBytes: number;
  expectedSha256: string;
}

export interface UploadRecord {
  id: string;
  datasetId: string;
  ownerKeyId: string;
  requestedFormat: string | null;
  format: string | null;
  status: UploadStatus;
  progress: number;
  fileName: string | null;
  blobKey: string;
  bytes: bigint;
  sha256: string | null;
  idempotencyKey: string | null;
  featureMap: Record<string, string> | null;
  dropFeatures: string[];
  /** The format's options for this upload, as its options schema parsed them; null when none were given. */
  options: Record<string, unknown> | null;
  multipart: MultipartState | null;
  errors: ImportIssue[];
  warnings: ImportIssue[];
  episodeCount: number | null;
  stepCount: bigint | null;
  version: number | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

const uploadSelect = {
  id: true,
  datasetId: true,
  ownerKeyId: true,
  requestedFormat: true,
  format: true,
  status: true,
  progress: true,
  fileName: true,
  blobKey: true,
  bytes: true,
  sha256: true,
  idempotencyKey: true,
  featureMap: true,
  dropFeatures: true,
  options: true,
  multipart: true,
  errors: true,
  warnings: true,
  episodeCount: true,
  stepCount: true,
  version: true,
  createdAt: true,
  updatedAt: true,
  finishedAt: true,
} as const;

type UploadRow = Prisma.UploadGetPayload<{ select: typeof uploadSelect }>;
// JSON columns are written only here, from validated values.
const toRecord = (row: UploadRow): UploadRecord => ({
  ...row,
  featureMap: row.featureMap as Record<string, string> | null,
  options: row.options as Record<string, unknown> | null,
  multipart: row.multipart as MultipartState | null,
  errors: row.errors as unknown as ImportIssue[],
  warnings: row.warnings as unknown as ImportIssue[],
});

@Injectable()
export class UploadsRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  /** Inserts an upload; on a repeated idempotency key returns the first upload instead. */
  async create(data: {
    id: string;
    datasetId: string;
    ownerKeyId: string;
    requestedFormat: string | null;
    fileName: string | null;
    blobKey: string;
    bytes: bigint;
    sha256: string;
    idempotencyKey: string | null;
    featureMap: Record<string, string> | null;
    dropFeatures?: string[];
    options?: Record<string, unknown> | null;
    status?: 'uploading' | 'received';
    multipart?: MultipartState;
  }): Promise<{ record: UploadRecord; created: boolean }> {
    try {
      const row = await this.prisma.upload.create({
        data: {
          ...data,
          featureMap: data.featureMap ?? Prisma.DbNull,
          options: (data.options ?? Prisma.DbNull) as Prisma.InputJsonValue | typeof Prisma.DbNull,
          multipart: data.multipart ? { ...data.multipart } : Prisma.DbNull,
        },
        select: uploadSelect,
      });
      return { record: toRecord(row), created: true };
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002' && data.idempotencyKey) {
        const existing = await this.findByIdempotencyKey(data.ownerKeyId, data.idempotencyKey);
        if (existing) return { record: existing, created: false };
      }
      throw error;
    }
  }

  async findById(id: string): Promise<UploadRecord | null> {
    const row = await this.prisma.upload.findUnique({ where: { id }, select: uploadSelect });
    return row ? toRecord(row) : null;
  }

  async findByIdempotencyKey(ownerKeyId: string, idempotencyKey: string): Promise<UploadRecord | null> {
    const row = await this.prisma.upload.findUnique({
      where: { ownerKeyId_idempotencyKey: { ownerKeyId, idempotencyKey } },
      select: uploadSelect,
    });
    return row ? toRecord(row) : null;
  }

  async list(params: { datasetId: string; status?: UploadStatus; afterId: string | undefined; take: number }): Promise<UploadRecord[]> {
    const rows = await this.prisma.upload.findMany({
      where: {
        datasetId: params.datasetId,
        ...(params.status ? { status: params.status } : {}),
        ...(params.afterId ? { id: { gt: params.afterId } } : {}),
      },
      orderBy: { id: 'asc' },
      take: params.take,
      select: uploadSelect,
    });
    return rows.map(toRecord);
  }

  /** Uploads not finished yet, for re-enqueueing their ingest at start. */
  async findUnfinishedIds(): Promise<string[]> {
    const rows = await this.prisma.upload.findMany({
      where: { status: { in: ['received', 'processing'] } },
      select: { id: true },
      orderBy: { id: 'asc' },
    });
    return rows.map((row) => row.id);
  }

  /** Which of these uploads are not finished (still arriving, or not yet published or failed). */
  async findUnfinishedAmong(ids: string[]): Promise<string[]> {
    const rows = await this.prisma.upload.findMany({
      where: { id: { in: ids }, status: { in: ['uploading', 'received', 'processing'] } },
      select: { id: true },
    });
    return rows.map((row) => row.id);
  }

  /** A resumable upload whose parts are all in: its bytes are now durable, like a single-request upload's. */
  async markReceived(id: string, bytes: bigint, sha256: string): Promise<boolean> {
    const updated = await this.prisma.upload.updateMany({
      where: { id, status: 'uploading' },
      data: { status: 'received', bytes, sha256 },
    });
    return updated.count === 1;
  }

  async markProcessing(id: string, format: string): Promise<void> {
    await this.prisma.upload.update({
      where: { id },
      data: { status: 'processing', format, progress: 0, errors: [], warnings: [] },
      select: { id: true },
    });
  }

  async setProgress(id: string, progress: number): Promise<void> {
    await this.prisma.upload.updateMany({ where: { id, status: 'processing' }, data: { progress } });
  }

  /** Ends an upload unpublished: `failed`, or `needs_mapping` when its first error says a mapping is missing (the inspection in its details). */
  async markFailed(id: string, errors: ImportIssue[], warnings: ImportIssue[]): Promise<void> {
    await this.prisma.upload.update({
      where: { id },
      data: {
        status: errors[0]?.code === MAPPING_REQUIRED ? 'needs_mapping' : 'failed',
        errors: errors as unknown as Prisma.InputJsonValue,
        warnings: warnings as unknown as Prisma.InputJsonValue,
        finishedAt: new Date(),
      },
      select: { id: true },
    });
  }
}
