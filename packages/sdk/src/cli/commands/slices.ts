import { readFile, rm, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { sliceFormats, type SliceFormat } from '@kura/schema';
import { KuraError } from '../../errors.js';
import { contextOf } from '../context.js';
import { formatBytes } from '../output.js';

export function sliceCommand(program: Command): void {
  program
    .command('slice')
    .description('cut a slice of a dataset and download it (resumes a broken download for arrow-file, parquet, lerobot)')
    .requiredOption('--dataset <id>', 'the dataset')
    .requiredOption('--out <file>', 'where to write the data')
    .option('--episodes <ranges>', 'episode ranges, e.g. 0-9,12')
    .option('--columns <names>', 'columns to keep, comma-separated (episode_index, step_index, timestamp always)')
    .option('--task <text>', 'only episodes whose task contains this text')
    .option('--version <n>', 'dataset version (default: latest)')
    .option('--format <format>', sliceFormats.join(', '), 'parquet')
    .option('--json', 'print JSON')
    .action(async (options: Record<string, string | boolean | undefined>) => {
      const { client, output } = await contextOf(options);
      const format = String(options.format) as SliceFormat;
      if (!sliceFormats.includes(format)) throw new KuraError('BAD_ARGUMENT', `--format must be one of ${sliceFormats.join(', ')}`);
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
