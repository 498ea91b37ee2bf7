import type { RecordBatch } from 'apache-arrow';
import { DatasetStatsAccumulator, type DatasetStatsSummary, type NumericColumn } from '@kura/formats';
import { valuesPerStep, type Feature } from '@kura/schema';
import { columnValues } from './batch-values.js';
import type { DecodePlan } from './slice-reader.js';

/**
 * Statistics of a slice's own rows, computed as ingest computes a version's (the same mergeable
 * accumulator, over every kept step): numeric features get count/min/max/mean/std/quantiles,
 * images and videos a count.
 */
export async function sliceStats(plan: DecodePlan): Promise<DatasetStatsSummary> {
  const stats = new DatasetStatsAccumulator();
  const features = plan.schema.fields.flatMap((field) => {
    const spec = field.metadata.get('kura.feature');
    return spec ? [{ name: field.name, feature: JSON.parse(spec) as Feature }] : [];
  });
  for await (const { batches } of plan.episodes()) for (const batch of batches) addBatch(stats, batch, features);
  return stats.summary();
}

function addBatch(stats: DatasetStatsAccumulator, batch: RecordBatch, features: Array<{ name: string; feature: Feature }>): void {
  for (const { name, feature } of features) {
    if (feature.dtype === 'image' || feature.dtype === 'video' || feature.dtype === 'string') {
      stats.addMediaFrames(name, batch.numRows);
      continue;
    }
    const size = valuesPerStep(feature);
    const values = columnValues(batch, name, batch.numRows, size, true) as NumericColumn;
    stats.numeric(name, size).addColumn(values, batch.numRows);
  }
}
