import { DataType, type RecordBatch } from 'apache-arrow';
import { DatasetStatsAccumulator, type DatasetStatsSummary, type NumericColumn } from '@kura/formats';
import { valuesPerStep, type Feature } from '@kura/schema';
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
    const child = batch.getChild(name)!.data[0]!.children[0]!;
    const size = valuesPerStep(feature);
    let values = child.values as NumericColumn;
    if (DataType.isBool(child.type)) {
      // Bools are bit-packed in Arrow; the accumulator takes 0/1 per value.
      const bits = child.values as Uint8Array;
      values = Uint8Array.from({ length: batch.numRows * size }, (_, index) => (bits[index >> 3]! >> (index & 7)) & 1);
    }
    stats.numeric(name, size).addColumn(values, batch.numRows);
  }
}
