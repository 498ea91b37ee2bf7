import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { DATABASE_URL, LOGGER } from '../database/database.tokens.js';
import { NotifiedCache } from '../database/notified-cache.js';
import type { Logger } from '../logging/logger.js';
import { KEY_CHANGES_CHANNEL, type ApiKeyRecord } from './keys.repository.js';

/**
 * Active keys by hash, so a request does not read its key from Postgres each time. Key updates
 * NOTIFY KEY_CHANGES_CHANNEL in their transaction, so a revocation takes effect in every process as
 * soon as Postgres delivers the notification (see NotifiedCache).
 */
@Injectable()
export class KeyCache extends NotifiedCache<ApiKeyRecord> implements OnApplicationShutdown {
  constructor(@Inject(DATABASE_URL) databaseUrl: string, @Inject(LOGGER) logger: Logger) {
    super({ databaseUrl, logger, channel: KEY_CHANGES_CHANNEL, what: 'key', idOf: (key) => key.id });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}
