import { Injectable } from '@nestjs/common';
import type { JobPayload } from '@kura/schema';
import type { JobHandler } from '../../jobs/job-handler.js';
import { IngestService } from './ingest.service.js';

/** The job that converts one upload; retried on infrastructure errors, not on bad data. */
@Injectable()
export class IngestUploadJob implements JobHandler<'uploads.ingest'> {
  readonly jobName = 'uploads.ingest' as const;

  constructor(private readonly ingest: IngestService) {}

  handle(payload: JobPayload<'uploads.ingest'>): Promise<void> {
    return this.ingest.ingest(payload.uploadId);
  }

  abandon(payload: JobPayload<'uploads.ingest'>, context: { deaths: number }): Promise<void> {
    return this.ingest.abandon(payload.uploadId, context.deaths);
  }

  gaveUp(payload: JobPayload<'uploads.ingest'>, context: { message: string }): Promise<void> {
    return this.ingest.gaveUp(payload.uploadId, context.message);
  }
}

export const ingestJobId = (uploadId: string) => `uploads.ingest:${uploadId}`;
