import type { FeatureSpec } from '@kura/schema';
import type { ImportedEpisode, Importer, ImportIssue, ImportResult, ImportSource } from '../importer.js';
import { validateEpisode } from '../validate.js';

/** Everything an importer produced for a source, for tests. */
export interface ImportedAll {
  result: ImportResult;
  features: FeatureSpec;
  fps: number | undefined;
  expectedEpisodes: number | undefined;
  episodes: ImportedEpisode[];
  warnings: ImportIssue[];
}

/**
 * Opens a source and reads all its episodes, collecting warnings; with `validate`, checks each
 * episode against the shared validator as the ingest job does; `dropFeatures` as the upload option.
 */
export async function importAll(
  importer: Importer,
  source: ImportSource,
  options: { validate?: boolean; dropFeatures?: string[] } = {},
): Promise<ImportedAll> {
  const warnings: ImportIssue[] = [];
  const result = await importer.open(source, {
    warn: (issue) => warnings.push(issue),
    ...(options.dropFeatures ? { dropFeatures: options.dropFeatures } : {}),
  });
  const episodes: ImportedEpisode[] = [];
  for await (const episode of result.episodes) {
    if (options.validate) validateEpisode(episode, result.features);
    episodes.push(episode);
  }
  return { result, features: result.features, fps: result.fps, expectedEpisodes: result.expectedEpisodes, episodes, warnings };
}
