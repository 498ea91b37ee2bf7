import { writeFile } from 'node:fs/promises';
import { exampleType } from './example.js';
import { maskedCrc32c, TFRECORD_FOOTER_BYTES, TFRECORD_HEADER_BYTES } from './tfrecord.js';

/*
 * Writing TFRecord files of tf.train.Examples, for tests that need inputs the fixture does not have
 * (broken step counts, invalid UTF-8…). Not used by the importer itself.
 */

/** The values of one Example feature, by list type. */
export type TestFeature = { bytes: Array<Uint8Array | string> } | { floats: number[] } | { int64s: number[] } | { empty: true };

/** Serialises a `tf.train.Example` with the given features. */
export function encodeExample(features: Record<string, TestFeature>): Uint8Array {
  const feature: Record<string, object> = {};
  for (const [key, value] of Object.entries(features)) {
    if ('bytes' in value)
      feature[key] = { bytes_list: { value: value.bytes.map((item) => (typeof item === 'string' ? Buffer.from(item, 'utf8') : item)) } };
    else if ('floats' in value) feature[key] = { float_list: { value: value.floats } };
    else if ('int64s' in value) feature[key] = { int64_list: { value: value.int64s } };
    else feature[key] = {};
  }
  return exampleType.encode(exampleType.fromObject({ features: { feature } })).finish();
}

/** One TFRecord record around `payload`: length, masked CRC of the length, payload, masked CRC of the payload. */
export function frameTfRecord(payload: Uint8Array): Uint8Array {
  const record = new Uint8Array(TFRECORD_HEADER_BYTES + payload.length + TFRECORD_FOOTER_BYTES);
  const view = new DataView(record.buffer);
  view.setBigUint64(0, BigInt(payload.length), true);
  view.setUint32(8, maskedCrc32c(record.subarray(0, 8)), true);
  record.set(payload, TFRECORD_HEADER_BYTES);
  view.setUint32(TFRECORD_HEADER_BYTES + payload.length, maskedCrc32c(payload), true);
  return record;
}

/** Writes a TFRecord file holding the given payloads, in order. */
export async function writeTfRecordFile(path: string, payloads: Uint8Array[]): Promise<void> {
  await writeFile(path, Buffer.concat(payloads.map((payload) => frameTfRecord(payload))));
}

/** The smallest bytes that look like a JPEG of the given size to a header reader (SOI, SOF0, EOI); not decodable. */
export function jpegHeaderOnly(height: number, width: number): Uint8Array {
  // SOF0 segment: length 17, precision 8, height, width, 3 components of 3 bytes each.
  const sof = [
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    0x03,
    1,
    0x22,
    0,
    2,
    0x11,
    1,
    3,
    0x11,
    1,
  ];
  return Uint8Array.from([0xff, 0xd8, ...sof, 0xff, 0xd9]);
}

/** Options of {@link bridgeLikeEpisode}. */
export interface BridgeLikeEpisodeOptions {
  steps?: number;
  /** One instruction for every step, or one per step. */
  instruction?: string | Array<Uint8Array | string>;
  episodeId?: number;
}

/**
 * Features of a synthetic episode shaped like the bridge_debug fixture (so the fixture's features.json
 * describes it): 7-D action and state, a 512-D language embedding, four 64×64 JPEG cameras, the flags.
 * Change or delete entries to break it in one place.
 */
export function bridgeLikeEpisode(options: BridgeLikeEpisodeOptions = {}): Record<string, TestFeature> {
  const steps = options.steps ?? 4;
  const instruction = options.instruction ?? 'pick up the test block';
  const perStep = (size: number, seed: number): number[] => Array.from({ length: steps * size }, (_, index) => seed + index / 8);
  const frames = Array.from({ length: steps }, () => jpegHeaderOnly(64, 64));
  return {
    'steps/action': { floats: perStep(7, 0) },
    'steps/observation/state': { floats: perStep(7, 1) },
    'steps/language_embedding': { floats: perStep(512, 2) },
    'steps/observation/image_0': { bytes: frames },
    'steps/observation/image_1': { bytes: frames },
    'steps/observation/image_2': { bytes: frames },
    'steps/observation/image_3': { bytes: frames },
    'steps/language_instruction': {
      bytes: typeof instruction === 'string' ? Array.from({ length: steps }, () => instruction) : instruction,
    },
    'steps/reward': { floats: Array.from({ length: steps }, (_, step) => (step === steps - 1 ? 1 : 0)) },
    'steps/discount': { floats: Array.from({ length: steps }, () => 1) },
    'steps/is_first': { int64s: Array.from({ length: steps }, (_, step) => (step === 0 ? 1 : 0)) },
    'steps/is_last': { int64s: Array.from({ length: steps }, (_, step) => (step === steps - 1 ? 1 : 0)) },
    'steps/is_terminal': { int64s: Array.from({ length: steps }, (_, step) => (step === steps - 1 ? 1 : 0)) },
    'episode_metadata/file_path': { bytes: ['/synthetic/episode.npy'] },
    'episode_metadata/episode_id': { int64s: [options.episodeId ?? 0] },
    'episode_metadata/has_language': { int64s: [1] },
  };
}
