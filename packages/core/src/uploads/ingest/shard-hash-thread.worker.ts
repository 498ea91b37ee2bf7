// The thread of ShardHashThread (shard-hash-thread.ts): a shard's path and episode ranges in, its
// hashes out. Runs as built code: dist/uploads/ingest/.
import { parentPort } from 'node:worker_threads';
import { hashShard } from '@kura/formats/shard-hash';
import type { ShardHashReply, ShardHashRequest } from './shard-hash-thread.js';

const port = parentPort!;
port.on('message', (request: ShardHashRequest) => {
  hashShard(request.path, request.episodes).then(
    (hashes) => port.postMessage({ id: request.id, hashes } satisfies ShardHashReply),
    (error: unknown) =>
      port.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error) } satisfies ShardHashReply),
  );
});
