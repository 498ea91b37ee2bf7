/** The fields of a Kura NDJSON step line (API.md), in the order the exporter writes them. */
export const stepLineKeys = [
  'episode',
  'sourceEpisode',
  'step',
  'timestamp',
  'observation',
  'action',
  'reward',
  'discount',
  'isTerminal',
  'language',
  'success',
] as const;
