import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EpisodeRange, ShardHashes } from '@kura/formats/shard-hash';

/** Built code runs in the thread (tests run the sources): the repository's dist/ copy. */
const codeRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..');
const workerScript = join(codeRoot, 'packages/core/dist/uploads/ingest/shard-hash-thread.worker.js');

export type ShardHashRequest = { id: number; path: string; episodes: EpisodeRange[] };
export type ShardHashReply = { id: number; hashes: ShardHashes } | { id: number; error: string };

/**
 * Hashes written shards on a thread of its own: the file's sha256 and each episode's checksum cost
 * a tenth of a conversion, and on two cores they run beside it (the thread reads the file back from
 * the page cache). Started with the first shard.
 */
export class ShardHashThread {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (hashes: ShardHashes) => void; reject: (error: Error) => void }>();

  hash(path: string, episodes: EpisodeRange[]): Promise<ShardHashes> {
    const worker = (this.worker ??= this.start());
    const id = this.nextId++;
    const hashed = new Promise<ShardHashes>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    worker.postMessage({ id, path, episodes } satisfies ShardHashRequest);
    return hashed;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    worker?.removeAllListeners('exit');
    await worker?.terminate();
    this.failAll(new Error('the shard hashing thread was stopped'));
  }

  private start(): Worker {
    // Its heap holds a chunk and a few strings at a time.
    const worker = new Worker(workerScript, { resourceLimits: { maxOldGenerationSizeMb: 32 } });
    worker.on('message', (reply: ShardHashReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if ('hashes' in reply) waiter?.resolve(reply.hashes);
      else waiter?.reject(new Error(reply.error));
    });
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', (code) => this.failAll(new Error(`the shard hashing thread ended (exit code ${code})`)));
    return worker;
  }

  private failAll(error: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}
