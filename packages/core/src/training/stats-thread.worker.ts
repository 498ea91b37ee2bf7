// The statistics thread of a training set's materialisation (see stats-thread.ts): numeric rows in,
// the accumulated statistics (their JSON form) out. Runs as built code: dist/training/.
import { parentPort } from 'node:worker_threads';
import { DatasetStatsAccumulator, type NumericColumn } from '@kura/formats/stats';
import type { StatsThreadRequest, StatsThreadReply } from './stats-thread.js';

const arrays = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  bool: Uint8Array,
} as const;

const stats = new DatasetStatsAccumulator();
const port = parentPort!;
port.on('message', (request: StatsThreadRequest) => {
  let reply: StatsThreadReply;
  try {
    if (request.kind === 'rows') {
      const values = new arrays[request.dtype](request.buffer) as NumericColumn;
      stats.numeric(request.name, request.components).addColumn(values, values.length / request.components);
      reply = { kind: 'added', bytes: request.buffer.byteLength };
    } else {
      reply = { kind: 'stats', json: stats.toJSON() };
    }
  } catch (error) {
    reply = { kind: 'error', message: (error as Error).message };
  }
  port.postMessage(reply);
});
