import { readFile, rm, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { sliceFormatExtensions, sliceFormats, type SliceFormat } from '@kura/schema';
import { KuraError } from '../../errors.js';
import { contextOf } from '../context.js';
import { formatBytes } from '../output.js';

/** What an `--out` extension means: the server's own download extensions (the first format to use one: `.tar` is `lerobot`), and two common aliases. */
const FORMAT_OF_EXTENSION: Readonly<Record<string, SliceFormat>> = {
  ...Object.fromEntries([...sliceFormats].reverse().map((format) => [`.${sliceFormatExtensions[format]}`, format])),
  '.feather': 'arrow-file',
  '.jsonl': 'ndjson',
};
/** Written when neither `--format` nor the extension says. */
const DEFAULT_FORMAT: SliceFormat = 'parquet';

const EXTENSIONS_HELP = `
Without --format, the extension of --out picks the format:
  .arrow, .feather  arrow-file  Arrow IPC file format (pyarrow.ipc.open_file, pyarrow.feather.read_table)
  .arrows           arrow       Arrow IPC stream format (pyarrow.ipc.open_stream)
  .parquet          parquet
  .ndjson, .jsonl   ndjson      Kura NDJSON, one step per line
  .tar              lerobot     a LeRobot v3.0 dataset as a tar archive (--format lerobot-v2.1 for v2.1)
Any other extension writes ${DEFAULT_FORMAT} and says so on stderr. A --format that contradicts a
known extension is refused (exit 2).`;

/**
 * The format to download: `--format` when given, else the one `out`'s extension names, else the
 * default with a warning. Throws BAD_ARGUMENT (exit 2) for an unknown format or one that
 * contradicts the extension, since a file named `.arrow` holding Parquet fails every reader.
 */
export function sliceFormatFor(out: string, requested: string | undefined): { format: SliceFormat; warning?: string } {
  const extension = extname(out).toLowerCase();
  const implied = Object.hasOwn(FORMAT_OF_EXTENSION, extension) ? FORMAT_OF_EXTENSION[extension] : undefined;
  if (requested === undefined) {
    if (implied !== undefined) return { format: implied };
    const named = extension === '' ? 'has no extension' : `has extension ${extension}, which names no format`;
    return {
      format: DEFAULT_FORMAT,
      warning: `kura: writing ${DEFAULT_FORMAT} to ${out} (it ${named}); choose another with --format or an extension (.arrow, .feather, .arrows, .parquet, .ndjson, .jsonl, .tar)`,
    };
  }
  const format = sliceFormats.find((known) => known === requested);
  if (format === undefined) throw new KuraError('BAD_ARGUMENT', `--format must be one of ${sliceFormats.join(', ')}, got ${requested}`);
  if (implied !== undefined && sliceFormatExtensions[implied] !== sliceFormatExtensions[format]) {
    throw new KuraError(
      'BAD_ARGUMENT',
      `--format ${format} contradicts --out ${out}, whose extension ${extension} means ${implied}; drop --format or change the extension`,
    );
  }
  return { format };
}

export function sliceCommand(program: Command): void {
  program
    .command('slice')
    .description('cut a slice of a dataset and download it (resumes a broken download for arrow-file, parquet, lerobot)')
    .requiredOption('--dataset <id>', 'the dataset')
    .requiredOption('--out <file>', 'where to write the data; its extension picks the format (below)')
    .option('--episodes <ranges>', 'episode ranges, e.g. 0-9,12')
    .option('--columns <names>', 'columns to keep, comma-separated (episode_index, step_index, timestamp always)')
    .option('--task <text>', 'only episodes whose task contains this text')
    .option('--version <n>', 'dataset version (default: latest)')
    .option('--format <format>', `${sliceFormats.join(', ')} (default: from the extension of --out, else ${DEFAULT_FORMAT})`)
    .option('--json', 'print JSON')
    .addHelpText('after', EXTENSIONS_HELP)
    .action(async (options: Record<string, string | boolean | undefined>) => {
      // Checked before anything is created on the server.
      const { format, warning } = sliceFormatFor(String(options.out), options.format === undefined ? undefined : String(options.format));
      const { client, output } = await contextOf(options);
      // Also with --json: stdout stays JSON, and a script should see that the format was guessed.
      if (warning !== undefined) process.stderr.write(`${warning}\n`);
      const request = {
        sources: [{ datasetId: String(options.dataset), ...(options.version ? { version: Number(options.version) } : {}) }],
        ...(options.episodes ? { episodes: String(options.episodes) } : {}),
        ...(options.columns ? { columns: String(options.columns).split(',') } : {}),
        ...(options.task ? { task: String(options.task) } : {}),
      };
      // The same command run again after a broken download continues it: same slice, same bytes.
      const pending = `${String(options.out)}.part.slice.json`;
      const earlier = await readFile(pending, 'utf8')
        .then((text) => JSON.parse(text) as { request: unknown; sliceId: string })
        .catch(() => undefined);
      const slice =
        earlier && JSON.stringify(earlier.request) === JSON.stringify(request)
          ? await client.slices.get(earlier.sliceId)
          : await client.slices.create(request);
      await writeFile(pending, JSON.stringify({ request, sliceId: slice.id }));
      output.note(`slice ${slice.id}: ${slice.episodeCount} episodes, ${slice.stepCount} steps`);
      const bar = output.progress('downloading', 'bytes');
      let result;
      try {
        result = await client.downloads.sliceToFile(slice.id, format, String(options.out), {
          onProgress: ({ bytes, total }) => bar.update(bytes, total),
        });
      } finally {
        bar.stop();
      }
      await rm(pending, { force: true });
      output.result(
        { slice, out: options.out, format, bytes: result.bytes, resumedFrom: result.resumedFrom },
        () =>
          `${options.out}: ${formatBytes(result.bytes)} (${format})${result.resumedFrom > 0 ? `, resumed at ${formatBytes(result.resumedFrom)}` : ''}`,
      );
    });
}
