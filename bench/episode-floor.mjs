// A peer of Kura's shards with one record batch per episode (the scale bench's floor until Kura beat
// it on short episodes, hence the file's name): a minimal program that only reads the
// NDJSON (JSON.parse per line), groups steps into episodes and writes them as an Arrow IPC file
// with apache-arrow, one record batch per episode — no validation, stats, jail, blob store or
// database. Its ratio (many short episodes against few long ones, same steps) is how much of Kura's
// ratio the one-batch-per-episode layout costs by itself.
import { createReadStream, createWriteStream } from 'node:fs';
import { setImmediate } from 'node:timers';
import { createInterface } from 'node:readline';
import {
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  Int64,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  makeData,
} from 'apache-arrow';

const STATE = 6;
const ACTION = 6;
const schema = new Schema([
  new Field('episode_index', new Int64(), false),
  new Field('step_index', new Int32(), false),
  new Field('timestamp', new Float64(), false),
  new Field('observation.state', new FixedSizeList(STATE, new Field('item', new Float32(), false)), false),
  new Field('action', new FixedSizeList(ACTION, new Field('item', new Float32(), false)), false),
]);

function batchOf(episodeIndex, steps) {
  const rows = steps.length;
  const list = (type, width, pick) => {
    const values = new Float32Array(rows * width);
    steps.forEach((step, row) => values.set(pick(step), row * width));
    return makeData({ type, length: rows, nullCount: 0, child: makeData({ type: new Float32(), length: rows * width, data: values }) });
  };
  const children = [
    makeData({ type: new Int64(), length: rows, data: new BigInt64Array(rows).fill(BigInt(episodeIndex)) }),
    makeData({ type: new Int32(), length: rows, data: Int32Array.from(steps, (step) => step.step) }),
    makeData({ type: new Float64(), length: rows, data: Float64Array.from(steps, (step) => step.timestamp ?? 0) }),
    list(schema.fields[3].type, STATE, (step) => step.observation.state),
    list(schema.fields[4].type, ACTION, (step) => step.action),
  ];
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: rows, nullCount: 0, children }));
}

/** Seconds to turn `input` (Kura NDJSON of a 6-number state and action) into an Arrow file at `output`. */
export async function episodeFloorSeconds(input, output) {
  const started = process.hrtime.bigint();
  const writer = new RecordBatchFileWriter();
  const sink = createWriteStream(output);
  const drained = (async () => {
    for await (const chunk of writer) if (!sink.write(chunk)) await new Promise((resolve) => sink.once('drain', resolve));
  })();
  writer.reset(undefined, schema);
  let episode;
  let steps = [];
  let index = 0;
  for await (const line of createInterface({ input: createReadStream(input), crlfDelay: Infinity })) {
    if (!line) continue;
    const step = JSON.parse(line);
    if (step.episode !== episode && steps.length > 0) {
      writer.write(batchOf(index++, steps));
      steps = [];
      // Let the drain take the batch's bytes (as Kura's shard writer does): a writer queue left to
      // grow makes apache-arrow's writes quadratic.
      await new Promise((resolve) => setImmediate(resolve));
    }
    episode = step.episode;
    steps.push(step);
  }
  if (steps.length > 0) writer.write(batchOf(index, steps));
  writer.finish();
  await drained;
  await new Promise((resolve, reject) => sink.end((error) => (error ? reject(error) : resolve())));
  return Number(process.hrtime.bigint() - started) / 1e9;
}
