import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { DatasetAccess } from '@kura/schema';
import { DATABASE_URL, LOGGER } from '../database/database.tokens.js';
import { NotifiedCache } from '../database/notified-cache.js';
import type { Logger } from '../logging/logger.js';

/**
 * Announced by a trigger on `datasets` (migration 20261207200000_dataset_access_notify) whenever a
 * dataset's access or owner changes or it is deleted, in the changing transaction, whoever changes it.
 */
export const DATASET_CHANGES_CHANNEL = 'kura_dataset_changes';

/** What decides who may read a dataset. */
export interface DatasetAccessRecord {
  id: string;
  access: DatasetAccess;
  ownerKeyId: string;
}

/**
 * Datasets' access levels and owners by id, for the access check on every read (a slice download,
 * a stats request): a Prisma query per request was a seventh of a small download's CPU. Kept
 * correct by the trigger's notifications (see NotifiedCache). Grants are not cached: a grant check
 * reads Postgres each time, so a revoked grant takes effect at once.
 */
@Injectable()
export class DatasetAccessCache extends NotifiedCache<DatasetAccessRecord> implements OnApplicationShutdown {
  constructor(@Inject(DATABASE_URL) databaseUrl: string, @Inject(LOGGER) logger: Logger) {
    super({ databaseUrl, logger, channel: DATASET_CHANGES_CHANNEL, what: 'dataset access', idOf: (dataset) => dataset.id });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}
