import { Dictionary, Field, Int32, Schema, Utf8 } from 'apache-arrow';
import { featureField, kuraArrowSchema, stepColumns, type Feature, type FeatureSpec } from '@kura/schema';
import { sliceUnprocessable } from './slices.errors.js';

/** One output column of a slice: its name, the column it comes from in each source, its feature spec. */
export interface SliceColumn {
  name: string;
  /** datasetId → column name in that dataset. */
  from: Record<string, string>;
  /** The feature spec for feature columns; absent for Kura's step columns. */
  feature?: Feature;
}

/** Columns every slice has, whatever `columns` asks for. */
export const ALWAYS_COLUMNS = ['episode_index', 'step_index', 'timestamp'] as const;

/** The column that says which source a row came from, in slices of several datasets. */
export const DATASET_ID_COLUMN = 'dataset_id';

type RequestedColumn = string | { name: string; from: Record<string, string> };

/**
 * Resolves a slice's output columns over its sources. Without `columns`, every column of the
 * sources, which must then have the same features. With `columns`, the three always-present
 * columns first, then the requested ones in order, each looked up in every source under its alias.
 * Shapes, dtypes and encodings must agree across sources.
 */
export function resolveSliceColumns(
  sources: ReadonlyArray<{ datasetId: string; features: FeatureSpec }>,
  requested: RequestedColumn[] | undefined,
): SliceColumn[] {
  const datasetIds = sources.map((source) => source.datasetId);
  const sameFrom = (name: string) => Object.fromEntries(datasetIds.map((id) => [id, name]));
  if (!requested) {
    const first = sources[0]!;
    for (const other of sources.slice(1)) {
      const differences = featureDifferences(first.features, other.features);
      if (differences.length > 0) {
        throw sliceUnprocessable(
          'SLICE_FEATURES_DIFFER',
          `sources ${first.datasetId} and ${other.datasetId} have different features (${differences.join('; ')}); list the columns to take, with "from" aliases where names differ`,
          'columns',
          { datasets: [first.datasetId, other.datasetId], differences },
        );
      }
    }
    return [
      ...stepColumns.map((name) => ({ name, from: sameFrom(name) })),
      ...Object.keys(first.features)
        .sort()
        .map((name) => ({ name, from: sameFrom(name), feature: first.features[name]! })),
    ];
  }

  const columns: SliceColumn[] = ALWAYS_COLUMNS.map((name) => ({ name, from: sameFrom(name) }));
  const seen = new Set<string>(ALWAYS_COLUMNS);
  requested.forEach((column, position) => {
    const field = `columns.${position}`;
    const name = typeof column === 'string' ? column : column.name;
    const aliases = typeof column === 'string' ? {} : column.from;
    for (const datasetId of Object.keys(aliases)) {
      if (!datasetIds.includes(datasetId)) {
        throw sliceUnprocessable(
          'UNKNOWN_SOURCE',
          `column "${name}" names dataset "${datasetId}" in "from", which is not a source of the slice`,
          `${field}.from`,
          {
            column: name,
            datasetId,
          },
        );
      }
    }
    if (seen.has(name)) {
      if ((ALWAYS_COLUMNS as readonly string[]).includes(name) && Object.keys(aliases).length === 0) return;
      throw sliceUnprocessable('DUPLICATE_COLUMN', `column "${name}" is listed twice`, field, { column: name });
    }
    if (name === DATASET_ID_COLUMN) {
      throw sliceUnprocessable(
        'UNKNOWN_COLUMN',
        `"${DATASET_ID_COLUMN}" is added by Kura to slices of several datasets; it cannot be requested`,
        field,
        { column: name },
      );
    }
    seen.add(name);
    const isStepColumn = (stepColumns as readonly string[]).includes(name);
    let feature: Feature | undefined;
    let featureFrom: string | undefined;
    const from: Record<string, string> = {};
    for (const source of sources) {
      const sourceName = aliases[source.datasetId] ?? name;
      from[source.datasetId] = sourceName;
      const sourceFeature = source.features[sourceName];
      const sourceIsStepColumn = (stepColumns as readonly string[]).includes(sourceName);
      if (!sourceIsStepColumn && !sourceFeature) {
        throw sliceUnprocessable(
          'UNKNOWN_COLUMN',
          `dataset ${source.datasetId} has no column "${sourceName}"${sourceName === name ? '' : ` (alias of "${name}")`}; it has ${[...stepColumns, ...Object.keys(source.features).sort()].join(', ')}`,
          field,
          { column: name, datasetId: source.datasetId, sourceColumn: sourceName },
        );
      }
      // Step columns keep their names and meaning (a reward cannot become "success"); features are features.
      if (isStepColumn !== sourceIsStepColumn || (isStepColumn && sourceName !== name)) {
        throw incompatible(name, `step column "${isStepColumn ? name : sourceName}" can only be taken under its own name`, field);
      }
      if (!sourceFeature) continue;
      if (!feature) {
        feature = sourceFeature;
        featureFrom = source.datasetId;
      } else {
        const difference = featureDifference(feature, sourceFeature);
        if (difference)
          throw incompatible(name, `${featureFrom} has ${difference.left}, ${source.datasetId} has ${difference.right}`, field);
      }
    }
    columns.push({ name, from, ...(feature ? { feature } : {}) });
  });
  return columns;
}

const incompatible = (column: string, why: string, field: string) =>
  sliceUnprocessable('SLICE_COLUMN_INCOMPATIBLE', `column "${column}" differs between sources: ${why}`, field, { column });

function describe(feature: Feature): string {
  return `${feature.dtype} [${feature.shape.join(', ')}]${feature.encoding ? ` ${feature.encoding}` : ''}`;
}

function featureDifference(left: Feature, right: Feature): { left: string; right: string } | undefined {
  const same =
    left.dtype === right.dtype &&
    left.shape.length === right.shape.length &&
    left.shape.every((dimension, index) => dimension === right.shape[index]) &&
    (left.encoding ?? null) === (right.encoding ?? null);
  return same ? undefined : { left: describe(left), right: describe(right) };
}

function featureDifferences(left: FeatureSpec, right: FeatureSpec): string[] {
  const names = [...new Set([...Object.keys(left), ...Object.keys(right)])].sort();
  const differences: string[] = [];
  for (const name of names) {
    const leftFeature = left[name];
    const rightFeature = right[name];
    if (!leftFeature || !rightFeature) differences.push(`"${name}" only in one`);
    else {
      const difference = featureDifference(leftFeature, rightFeature);
      if (difference) differences.push(`"${name}": ${difference.left} vs ${difference.right}`);
    }
  }
  return differences;
}

/**
 * The Arrow schema of a slice's output: `dataset_id` first when there are several sources, then the
 * columns as Kura shards type them. Dictionary ids are fixed so the bytes never depend on the process.
 */
export function sliceArrowSchema(columns: SliceColumn[], multiSource: boolean): Schema {
  const stepFields = new Map(kuraArrowSchema({}).fields.map((field) => [field.name, field]));
  const features: FeatureSpec = {};
  const fields: Field[] = [];
  if (multiSource) fields.push(new Field(DATASET_ID_COLUMN, new Dictionary(new Utf8(), new Int32(), 1), false));
  for (const column of columns) {
    if (column.feature) {
      features[column.name] = column.feature;
      fields.push(featureField(column.name, column.feature));
    } else {
      const field = stepFields.get(column.name);
      if (!field) throw new Error(`"${column.name}" is neither a feature nor a step column`);
      fields.push(field);
    }
  }
  return new Schema(fields, new Map([['kura.features', JSON.stringify(features)]]));
}
