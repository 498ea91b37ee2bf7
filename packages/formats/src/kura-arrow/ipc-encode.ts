import { AsyncByteQueue, RecordBatchFileWriter, RecordBatchStreamWriter, type RecordBatch, type Schema } from 'apache-arrow';

/** Collects what a writer emits so the caller can take it right after each write (pull, not push). */
class CollectingQueue extends AsyncByteQueue {
  chunks: Uint8Array[] = [];
  override write(value: Uint8Array): void {
    if (value.byteLength > 0) this.chunks.push(value);
  }
  take(): Uint8Array[] {
    const chunks = this.chunks;
    this.chunks = [];
    return chunks;
  }
}

/**
 * Encodes batches as an Arrow IPC stream or file, yielding the bytes of each batch before the next
 * is pulled: memory stays at one batch however slow the reader is. Batches sharing one dictionary
 * vector get that dictionary written once (the file format allows nothing else).
 */
export async function* encodeArrowIpc(params: {
  schema: Schema;
  batches: AsyncIterable<RecordBatch>;
  kind: 'stream' | 'file';
}): AsyncGenerator<Uint8Array> {
  const queue = new CollectingQueue();
  const writer = params.kind === 'file' ? new RecordBatchFileWriter() : new RecordBatchStreamWriter();
  writer.reset(queue, params.schema);
  for await (const batch of params.batches) {
    writer.write(batch);
    yield* queue.take();
  }
  // finish() writes the end marker (and, for files, the footer) even when there was no batch.
  writer.finish();
  yield* queue.take();
}
