import pg from 'pg';
import type { Logger } from '../logging/logger.js';

/** A safety net: even an entry whose change was never heard is read again after this long. */
const ENTRY_TTL_MS = 5 * 60_000;
const MAX_ENTRIES = 10_000;
const RECONNECT_MS = 1000;

export interface NotifiedCacheOptions<V> {
  databaseUrl: string;
  logger: Logger;
  /** The channel every change to a cached row is announced on (in the changing transaction), its payload the row's id. */
  channel: string;
  /** What is cached, for the log line when the listener is lost. */
  what: string;
  /** The row id of a value: a notification drops every entry whose value has that id. */
  idOf: (value: V) => string;
}

/**
 * Rows kept in memory so a request does not read them from Postgres each time. Correct only while
 * this process hears every change: it LISTENs on the channel, and while that connection is down
 * nothing is cached or served from cache. A change thus takes effect everywhere as soon as Postgres
 * delivers its notification. The listener starts with the first lookup, so processes that never
 * look anything up (workers) hold no connection.
 */
export class NotifiedCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private listener: pg.Client | undefined;
  private listening = false;
  private started = false;
  private closing = false;
  /** Moves on at every forget: a read that began before one must not be cached after it. */
  private generation = 0;

  constructor(private readonly options: NotifiedCacheOptions<V>) {}

  async close(): Promise<void> {
    this.closing = true;
    this.listening = false;
    await this.listener?.end().catch(() => undefined);
  }

  /** A token to pass to set(): taken before reading the row from Postgres. */
  readStarted(): number {
    return this.generation;
  }

  get(key: string): V | undefined {
    if (!this.started && !this.closing) {
      this.started = true;
      void this.listen().catch((error: unknown) => this.lost(error));
    }
    if (!this.listening) return undefined;
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, readStarted: number): void {
    if (!this.listening || readStarted !== this.generation) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, expiresAt: Date.now() + ENTRY_TTL_MS });
  }

  /** Drops a row's entries (this process changed it, or heard that another did). */
  forget(id: string): void {
    this.generation++;
    for (const [key, entry] of this.entries) if (this.options.idOf(entry.value) === id) this.entries.delete(key);
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.databaseUrl });
    this.listener = client;
    client.on('notification', (message) => {
      if (message.channel === this.options.channel && message.payload) this.forget(message.payload);
    });
    client.on('error', (error) => this.lost(error));
    client.on('end', () => this.lost(new Error(`${this.options.what} change listener disconnected`)));
    await client.connect();
    await client.query(`LISTEN ${this.options.channel}`);
    this.listening = true;
  }

  /** Without the listener, changes could be missed: stop caching until it is back. */
  private lost(error: unknown): void {
    const wasListening = this.listening;
    this.listening = false;
    this.generation++;
    this.entries.clear();
    if (this.closing) return;
    if (wasListening)
      this.options.logger.warn(
        { err: error },
        `${this.options.what} change listener lost; ${this.options.what}s are read from Postgres until it is back`,
      );
    const client = this.listener;
    this.listener = undefined;
    client?.removeAllListeners();
    client?.on('error', () => undefined);
    client?.end().catch(() => undefined);
    if (client) setTimeout(() => void this.listen().catch((next: unknown) => this.lost(next)), RECONNECT_MS).unref();
  }
}
