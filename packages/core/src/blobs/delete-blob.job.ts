import { Inject, Injectable } from '@nestjs/common';
import type { JobPayload } from '@kura/schema';
import type { JobHandler } from '../jobs/job-handler.js';
import { BLOB_STORE, type BlobStore } from './blob-store.js';

/** Deletes a blob nothing refers to any more. Deleting twice is harmless, so retries are safe. */
@Injectable()
export class DeleteBlobJob implements JobHandler<'blobs.delete'> {
  readonly jobName = 'blobs.delete' as const;

  constructor(@Inject(BLOB_STORE) private readonly blobs: BlobStore) {}

  async handle(payload: JobPayload<'blobs.delete'>): Promise<void> {
    await this.blobs.delete({ key: payload.key });
  }
}

/** The deterministic job id for deleting a blob. */
export const deleteBlobJobId = (key: string) => `blobs.delete:${key}`;
