export { mcapMappingSchema, mcapOptionsSchema, type MappedFeature, type McapMapping, type McapOptions } from '@kura/schema';

/** A sample this much older than its tick still counts, unless the mapping says otherwise: two ticks. */
export const defaultMaxAgeS = (mapping: { rateHz?: number | undefined }) => (mapping.rateHz ? 2 / mapping.rateHz : 0.5);

/** The metadata record of a bag holding the mapping that imports it (Kura's MCAP export writes it; docs/mcap.md, "Export"). */
export const MAPPING_METADATA = 'kura.mapping';
