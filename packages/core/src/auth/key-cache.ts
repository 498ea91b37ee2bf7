import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { DATABASE_URL, LOGGER } from '../database/database.tokens.js';
import type { Logger } from '../logging/logger.js';
import { KEY_CHANGES_CHANNEL, type ApiKeyRecord } from './keys.repository.js';
/** A safety net: even a key whose change was never heard is read again after this long. */
const ENTRY_TTL_MS = 5 * 60_000;
const MAX_ENTRIES = 10_000;
const RECONNECT_MS = 1000;

/**
 * Active keys by hash, so a request does not read its key from Postgres each time. Correct only
 * while this process hears every change: it LISTENs on KEY_CHANGES_CHANNEL (key updates NOTIFY in
 * the same transaction), and while that connection is down nothing is cached or served from cache.
 * A revocation thus takes effect everywhere as soon as Postgres delivers the notification.
 */
@Injectable()
export class KeyCache implements OnApplicationShutdown {
  private readonly entries = new Map<string, { key: ApiKeyRecord; expiresAt: number }>();
  private listener: pg.Client | undefined;
  private listening = false;
  /** The listener starts with the first key looked up: processes that never authenticate (workers) hold no connection. */
  private started = false;
  private closing = false;
  /** Moves on at every forget: a read that began before one must not be cached after it. */
  private generation = 0;

  constructor(
    @Inject(DATABASE_URL) private readonly databaseUrl: string,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    this.listening = false;
    await this.listener?.end().catch(() => undefined);
  }

  /** A token to pass to set(): taken before reading the key from Postgres. */
  readStarted(): number {
    return this.generation;
  }

  get(keyHash: string): ApiKeyRecord | undefined {
    if (!this.started && !this.closing) {
      this.started = true;
      void this.listen().catch((error: unknown) => this.lost(error));
    }
    if (!this.listening) return undefined;
    const entry = this.entries.get(keyHash);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(keyHash);
      return undefined;
    }
    return entry.key;
  }

  set(keyHash: string, key: ApiKeyRecord, readStarted: number): void {
    if (!this.listening || readStarted !== this.generation) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(keyHash, { key, expiresAt: Date.now() + ENTRY_TTL_MS });
  }

  /** Drops a key (this process changed it, or heard that another did). */
  forget(keyId: string): void {
    this.generation++;
    for (const [hash, entry] of this.entries) if (entry.key.id === keyId) this.entries.delete(hash);
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    this.listener = client;
    client.on('notification', (message) => {
      if (message.channel === KEY_CHANGES_CHANNEL && message.payload) this.forget(message.payload);
    });
    client.on('error', (error) => this.lost(error));
    client.on('end', () => this.lost(new Error('key change listener disconnected')));
    await client.connect();
    await client.query(`LISTEN ${KEY_CHANGES_CHANNEL}`);
    this.listening = true;
  }

  /** Without the listener, changes could be missed: stop caching until it is back. */
  private lost(error: unknown): void {
    const wasListening = this.listening;
    this.listening = false;
    this.generation++;
    this.entries.clear();
    if (this.closing) return;
    if (wasListening) this.logger.warn({ err: error }, 'key change listener lost; keys are read from Postgres until it is back');
    const client = this.listener;
    this.listener = undefined;
    client?.removeAllListeners();
    client?.on('error', () => undefined);
    client?.end().catch(() => undefined);
    if (client) setTimeout(() => void this.listen().catch((next: unknown) => this.lost(next)), RECONNECT_MS).unref();
  }
}
