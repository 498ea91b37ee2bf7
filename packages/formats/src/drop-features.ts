import { ImportError, type ImportContext, type ImportedEpisode, type ImportResult } from './importer.js';

/**
 * The features of `context.dropFeatures` (the upload option `dropFeatures`), checked against every
 * feature the source has (`available`, before any is left out): a name the source lacks is
 * DROP_FEATURES_UNKNOWN (`field: 'dropFeatures'`), and each dropped feature is a FEATURE_DROPPED
 * warning, so the upload says what it left out. Returns the names to leave out.
 */
export function settleDroppedFeatures(available: Iterable<string>, context: ImportContext, file?: string): ReadonlySet<string> {
  const requested = [...new Set(context.dropFeatures ?? [])];
  if (requested.length === 0) return new Set();
  const known = new Set(available);
  const unknown = requested.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new ImportError(
      'DROP_FEATURES_UNKNOWN',
      `dropFeatures names ${unknown.map((name) => `"${name}"`).join(', ')}, which the upload does not have (it has: ${[...known].sort().join(', ')})`,
      { ...(file !== undefined ? { file } : {}), field: 'dropFeatures' },
      { unknown, available: [...known].sort() },
    );
  }
  for (const name of requested) {
    context.warn({
      code: 'FEATURE_DROPPED',
      message: `feature "${name}" is left out of the import, as dropFeatures asks; its data was not read`,
      location: { ...(file !== undefined ? { file } : {}), field: name },
    });
  }
  return new Set(requested);
}

/**
 * For importers that parse every feature of a step anyway (one JSON line, one TFRecord example):
 * the result with the dropped features removed from the spec and from each episode.
 */
export function withoutDroppedFeatures(result: ImportResult, context: ImportContext, file?: string): ImportResult {
  const dropped = settleDroppedFeatures(Object.keys(result.features), context, file);
  if (dropped.size === 0) return result;
  const features = Object.fromEntries(Object.entries(result.features).filter(([name]) => !dropped.has(name)));
  return { ...result, features, episodes: withoutFeatures(result.episodes, dropped) };
}

async function* withoutFeatures(episodes: AsyncIterable<ImportedEpisode>, dropped: ReadonlySet<string>): AsyncGenerator<ImportedEpisode> {
  for await (const episode of episodes) {
    const features = Object.fromEntries(Object.entries(episode.features).filter(([name]) => !dropped.has(name)));
    yield { ...episode, features };
  }
}
