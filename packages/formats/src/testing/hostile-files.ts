import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createGzip } from 'node:zlib';
import { ByteWriter } from 'hyparquet-writer/src/bytewriter.js';
import { serializeTCompactProtocol } from 'hyparquet-writer/src/thrift.js';
import { loadH5wasm } from '../hdf5/h5.js';
import { maskedCrc32c, TFRECORD_HEADER_BYTES } from '../rlds/tfrecord.js';

/*
 * Small files that declare far more than they hold (#19's memory findings), made at test time. Each
 * is a few kilobytes on disk and gigabytes once read naively.
 */

/**
 * An ALOHA episode whose /action and /observations/qpos are chunked datasets of `steps` rows, of
 * which only the first is stored: HDF5 reads the rest as fill values (zeros). 8 KB on disk for
 * 5,000,000 steps.
 */
export async function writeSparseAlohaHdf5(path: string, options: { steps: number; qposWidth?: number }): Promise<void> {
  const h5wasm = await loadH5wasm();
  await mkdir(dirname(path), { recursive: true });
  const file = new h5wasm.File(path, 'w');
  try {
    file.create_group('observations');
    for (const [name, width] of [
      ['action', 14],
      ['observations/qpos', options.qposWidth ?? 14],
    ] as const) {
      const dataset = file.create_dataset({
        name,
        data: new Float32Array(width),
        shape: [1, width],
        maxshape: [null, width],
        chunks: [1, width],
      });
      dataset.resize([options.steps, width]);
    }
  } finally {
    file.close();
  }
}

/** Parquet physical types and encodings by their numbers in parquet.thrift. */
const parquetType = { INT64: 2, FLOAT: 4 } as const;
const encoding = { PLAIN: 0, RLE: 3, RLE_DICTIONARY: 8 } as const;
const pageType = { DATA_PAGE: 0, DICTIONARY_PAGE: 2 } as const;

/** A required, uncompressed column whose every value is the single entry of its dictionary. */
export interface ConstantColumn {
  name: string;
  type: keyof typeof parquetType;
  /** The values its one data page declares: the page holds one run-length-encoded run of them. */
  values: number;
}

/**
 * A parquet file of one row group of `rows` rows, each column a dictionary page of one zero and a
 * data page declaring `column.values` values in a single RLE run (seven bytes). Written by hand, as
 * no writer makes a page that lies about its size; readers allocate what the header declares.
 */
export function constantParquet(params: { rows: number; columns: ConstantColumn[] }): Uint8Array {
  const writer = new ByteWriter();
  writer.appendBytes(new TextEncoder().encode('PAR1'));
  const chunks: object[] = [];
  for (const column of params.columns) {
    const start = writer.offset;
    const dictionary = new Uint8Array(column.type === 'INT64' ? 8 : 4);
    serializeTCompactProtocol(writer, {
      field_1: pageType.DICTIONARY_PAGE,
      field_2: dictionary.length,
      field_3: dictionary.length,
      field_7: { field_1: 1, field_2: encoding.PLAIN },
    });
    writer.appendBytes(dictionary);
    const dataStart = writer.offset;
    // Bit width 1, then one RLE run: header varint (count << 1), value byte 0.
    const run = new ByteWriter();
    run.appendUint8(1);
    run.appendVarInt(column.values * 2);
    run.appendUint8(0);
    const data = run.getBytes();
    serializeTCompactProtocol(writer, {
      field_1: pageType.DATA_PAGE,
      field_2: data.length,
      field_3: data.length,
      field_5: { field_1: column.values, field_2: encoding.RLE_DICTIONARY, field_3: encoding.RLE, field_4: encoding.RLE },
    });
    writer.appendBytes(data);
    const size = BigInt(writer.offset - start);
    chunks.push({
      field_2: BigInt(start),
      field_3: {
        field_1: parquetType[column.type],
        field_2: [encoding.PLAIN, encoding.RLE, encoding.RLE_DICTIONARY],
        field_3: [column.name],
        field_4: 0,
        field_5: BigInt(column.values),
        field_6: size,
        field_7: size,
        field_9: BigInt(dataStart),
        field_11: BigInt(start),
      },
    });
  }
  const footerStart = writer.offset;
  serializeTCompactProtocol(writer, {
    field_1: 1,
    field_2: [
      { field_4: 'schema', field_5: params.columns.length },
      ...params.columns.map((column) => ({ field_1: parquetType[column.type], field_3: 0, field_4: column.name })),
    ],
    field_3: BigInt(params.rows),
    field_4: [{ field_1: chunks, field_2: BigInt(footerStart - 4), field_3: BigInt(params.rows) }],
  });
  writer.appendUint32(writer.offset - footerStart);
  writer.appendBytes(new TextEncoder().encode('PAR1'));
  return writer.getBytes();
}

/**
 * A LeRobot v2.1 dataset of one episode of `length` steps (float32 [1] `observation.state` and
 * `action`), whose data file is `parquet`.
 */
export async function writeLerobotWithParquet(folder: string, params: { length: number; parquet: Uint8Array }): Promise<void> {
  const scalar = (dtype: string) => ({ dtype, shape: [1], names: null });
  const info = {
    codebase_version: 'v2.1',
    robot_type: 'test',
    fps: 10,
    chunks_size: 1000,
    data_path: 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet',
    video_path: null,
    features: {
      'observation.state': scalar('float32'),
      action: scalar('float32'),
      timestamp: scalar('float32'),
      frame_index: scalar('int64'),
      episode_index: scalar('int64'),
      index: scalar('int64'),
    },
  };
  await mkdir(join(folder, 'meta'), { recursive: true });
  await mkdir(join(folder, 'data/chunk-000'), { recursive: true });
  await writeFile(join(folder, 'meta/info.json'), JSON.stringify(info));
  await writeFile(join(folder, 'meta/episodes.jsonl'), `${JSON.stringify({ episode_index: 0, length: params.length, tasks: [] })}\n`);
  await writeFile(join(folder, 'data/chunk-000/episode_000000.parquet'), params.parquet);
}

/** The columns of {@link writeLerobotWithParquet}'s data file, each declaring `values` values. */
export function lerobotColumns(values: { state: number; others: number }): ConstantColumn[] {
  return [
    { name: 'timestamp', type: 'FLOAT', values: values.others },
    { name: 'frame_index', type: 'INT64', values: values.others },
    { name: 'observation.state', type: 'FLOAT', values: values.state },
    { name: 'action', type: 'FLOAT', values: values.others },
  ];
}

/**
 * A gzip-compressed TFRecord file of one record of `bytes` zero bytes (its checksums right): about a
 * thousandth of its size on disk. The payload is not a tf.train.Example; a reader must refuse its
 * size before it gets that far.
 */
export async function writeGzipTfRecordOfZeros(path: string, bytes: number): Promise<void> {
  const header = new Uint8Array(TFRECORD_HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setBigUint64(0, BigInt(bytes), true);
  view.setUint32(8, maskedCrc32c(header.subarray(0, 8)), true);
  const gzip = createGzip({ level: 9 });
  const done = once(gzip.pipe(createWriteStream(path)), 'finish');
  gzip.write(header);
  const zeros = new Uint8Array(16 * 1024 * 1024);
  for (let written = 0; written < bytes; written += zeros.length) {
    if (!gzip.write(zeros.subarray(0, Math.min(zeros.length, bytes - written)))) await once(gzip, 'drain');
  }
  // The payload's checksum is not computed (a gigabyte of CRC-32C in JavaScript): never reached.
  gzip.end(new Uint8Array(4));
  await done;
}
