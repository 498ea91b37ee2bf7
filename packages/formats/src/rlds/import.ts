import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { ImportContext, ImportedEpisode, Importer, ImportResult, ImportSource, SourceFile } from '../importer.js';
import { findFile, ImportError } from '../importer.js';
import { IngestBudget } from '../budget.js';
import { withoutDroppedFeatures } from '../drop-features.js';
import type { DecodedExample } from './example.js';
import { decodeExample } from './example.js';
import type { RldsPlan } from './mapping.js';
import { episodeFromExample, IssueTally, planFromFirstRecord } from './mapping.js';
import type { TfdsLeaf } from './tfds-features.js';
import { expectedEpisodesFromDatasetInfo, parseTfdsFeatures } from './tfds-features.js';
import type { TfRecord } from './tfrecord.js';
import { isTfRecordHeader, readFileStart, readTfRecords, TFRECORD_FOOTER_BYTES, TFRECORD_HEADER_BYTES } from './tfrecord.js';

/** TFDS shard names (`bridge_dataset-train.tfrecord-00000-of-00001`) and plain `x.tfrecord[s][.gz]`. */
const TFRECORD_NAME = /\.tfrecords?([-.]|$)/i;
/** Files never taken for unnamed TFRecord files when sniffing contents. */
const NOT_TFRECORD_NAME = /\.(json|md|txt|py|yaml|yml)$/i;
/** How many unnamed files detect() looks into: detection must stay cheap. */
const DETECT_SNIFF_LIMIT = 8;

/** Orders shards by their numbers (`-00002-of-00010` before `-00010-of-00010`, also when not zero-padded). */
const byPath = new Intl.Collator('en', { numeric: true }).compare;

function isTfRecordName(path: string): boolean {
  const name = posix.basename(path);
  // macOS archives carry `__MACOSX/._name` resource forks next to the real files.
  return TFRECORD_NAME.test(name) && !name.startsWith('._') && !path.split('/').includes('__MACOSX');
}

/** Whether a file starts with a TFRecord header whose length checksum holds and whose record fits the file. */
async function startsWithTfRecord(file: SourceFile): Promise<boolean> {
  if (file.bytes < TFRECORD_HEADER_BYTES + TFRECORD_FOOTER_BYTES) return false;
  const header = await readFileStart(file.absolutePath, TFRECORD_HEADER_BYTES);
  if (!isTfRecordHeader(header)) return false;
  const length = new DataView(header.buffer, header.byteOffset, 8).getBigUint64(0, true);
  return length + BigInt(TFRECORD_HEADER_BYTES + TFRECORD_FOOTER_BYTES) <= BigInt(file.bytes);
}

/** The source's TFRecord files in reading order: those named so, else those whose first bytes are a record. */
async function tfRecordFilesOf(source: ImportSource): Promise<SourceFile[]> {
  const named = source.files.filter((file) => isTfRecordName(file.path));
  if (named.length > 0) return named.sort((a, b) => byPath(a.path, b.path));
  const sniffed: SourceFile[] = [];
  for (const file of source.files) if (!NOT_TFRECORD_NAME.test(file.path) && (await startsWithTfRecord(file))) sniffed.push(file);
  return sniffed.sort((a, b) => byPath(a.path, b.path));
}

/** A TFDS metadata file (`features.json`, `dataset_info.json`) in the folder of the first TFRecord file. */
function siblingFile(source: ImportSource, tfRecordFile: SourceFile, name: string): SourceFile | undefined {
  const folder = posix.dirname(tfRecordFile.path);
  return findFile(source, folder === '.' ? name : `${folder}/${name}`);
}

async function readFeaturesJson(file: SourceFile | undefined, budget: IngestBudget): Promise<Map<string, TfdsLeaf> | undefined> {
  if (file === undefined) return undefined;
  budget.checkLine(file.bytes, { file: file.path }, file.path);
  const parsed = parseTfdsFeatures(await readFile(file.absolutePath, 'utf8'));
  if (!parsed.ok)
    throw new ImportError('RLDS_FEATURES_JSON_INVALID', `${file.path} is not a TFDS feature spec: ${parsed.problem}`, { file: file.path });
  return parsed.leaves;
}

/** Decodes a record's payload, turning anything that is not a non-empty tf.train.Example into an ImportError. */
function decodeRecord(record: TfRecord, file: SourceFile, episodeIndex: number, budget: IngestBudget): DecodedExample {
  const location = { file: file.path, episode: episodeIndex };
  const describe = `record ${record.indexInFile} of ${file.path} (byte ${record.offset})`;
  let example: DecodedExample;
  try {
    example = decodeExample(record.payload, (bytes, key) =>
      budget.checkTensor(bytes, { ...location, field: key }, `${key} of ${describe}`),
    );
  } catch (error) {
    if (error instanceof ImportError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ImportError('TFRECORD_EXAMPLE_INVALID', `${describe} is not a tf.train.Example (protobuf: ${reason})`, location);
  }
  // Protobuf skips fields it does not know, so arbitrary bytes can "decode"; an Example without features is no episode.
  if (example.size === 0)
    throw new ImportError('TFRECORD_EXAMPLE_INVALID', `${describe} decodes to a tf.train.Example with no features`, location);
  return example;
}

/** The first record of the dataset (skipping empty files), decoded, or undefined when there are no records at all. */
async function readFirstExample(
  files: SourceFile[],
  budget: IngestBudget,
): Promise<{ file: SourceFile; example: DecodedExample } | undefined> {
  for (const file of files) {
    // Leaving the loop early closes the file (the generator's finally).
    for await (const record of readTfRecords(file, { budget, peek: true })) return { file, example: decodeRecord(record, file, 0, budget) };
  }
  return undefined;
}

/** Reads the episodes, one record at a time, numbering them across files. */
async function* readEpisodes(
  files: SourceFile[],
  plan: RldsPlan,
  context: ImportContext,
  budget: IngestBudget,
): AsyncGenerator<ImportedEpisode> {
  const tally = new IssueTally();
  let episodeIndex = 0;
  for (const file of files) {
    for await (const record of readTfRecords(file, { firstEpisodeIndex: episodeIndex, budget })) {
      const example = decodeRecord(record, file, episodeIndex, budget);
      yield episodeFromExample(example, plan, { file: file.path, indexInFile: record.indexInFile, episodeIndex }, tally, budget);
      episodeIndex++;
    }
  }
  tally.flush(context, episodeIndex);
}

/**
 * RLDS / Open X-Embodiment datasets as TFDS writes them: TFRecord files of `tf.train.Example`s, one per
 * episode, with the steps flattened under `steps/...`, and the TFDS `features.json` beside them.
 * See README.md in this folder for the mapping to Kura features.
 */
export const rldsImporter: Importer = {
  format: 'rlds',
  looksFor: 'TFRecord files (named *.tfrecord*, or starting with a TFRecord header) of tf.train.Example episodes',

  async detect(source: ImportSource): Promise<boolean> {
    if (source.files.some((file) => isTfRecordName(file.path))) return true;
    const candidates = source.files.filter((file) => !NOT_TFRECORD_NAME.test(file.path)).slice(0, DETECT_SNIFF_LIMIT);
    for (const file of candidates) if (await startsWithTfRecord(file)) return true;
    return false;
  },

  async open(source: ImportSource, context: ImportContext): Promise<ImportResult> {
    const files = await tfRecordFilesOf(source);
    const firstFile = files[0];
    if (firstFile === undefined) {
      throw new ImportError(
        'RLDS_NO_TFRECORD_FILES',
        `no TFRecord files in the upload (looked for names like *.tfrecord* and for files starting with a TFRecord header)`,
      );
    }
    const budget = IngestBudget.of(context, source);
    const leaves = await readFeaturesJson(siblingFile(source, firstFile, 'features.json'), budget);
    // The first record completes the feature spec (unknown dimensions, image sizes) and finds an empty dataset early.
    const first = await readFirstExample(files, budget);
    if (first === undefined) {
      throw new ImportError('NO_EPISODES', `the TFRecord files hold no records (${files.map((file) => file.path).join(', ')})`, {
        file: firstFile.path,
      });
    }
    const plan = planFromFirstRecord({ leaves, firstExample: first.example, firstFile: first.file.path, context });
    const datasetInfo = siblingFile(source, firstFile, 'dataset_info.json');
    if (datasetInfo) budget.checkLine(datasetInfo.bytes, { file: datasetInfo.path }, datasetInfo.path);
    const expectedEpisodes = datasetInfo
      ? expectedEpisodesFromDatasetInfo(
          await readFile(datasetInfo.absolutePath, 'utf8'),
          files.map((file) => posix.basename(file.path)),
        )
      : undefined;
    return withoutDroppedFeatures(
      {
        features: plan.features,
        featuresFile: first.file.path,
        ...(expectedEpisodes === undefined ? {} : { expectedEpisodes }),
        episodes: readEpisodes(files, plan, context, budget),
      },
      context,
    );
  },
};
