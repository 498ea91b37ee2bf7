import type { ConversionRequest } from './upload-conversion.js';

/** A conversion request for tests: a Kura NDJSON upload into an empty dataset, 1 MiB shards; `fields` say the rest. */
export function testConversionRequest(fields: Pick<ConversionRequest, 'rawPath' | 'work'> & Partial<ConversionRequest>): ConversionRequest {
  return {
    datasetId: 'ds_test',
    fileName: 'upload.ndjson',
    requestedFormat: 'kura-ndjson',
    featureMap: {},
    dropFeatures: [],
    options: {},
    datasetFeatures: null,
    firstIndex: 0,
    defaultFps: 10,
    shardBytes: 1 << 20,
    archiveLimits: {},
    ...fields,
  };
}
