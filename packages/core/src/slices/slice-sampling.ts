import { hash } from 'node:crypto';

/**
 * How many of `total` sampled episodes each source gets: in proportion to its weight (largest
 * remainder, ties to the earlier source), never more than it has; what a source cannot give goes
 * to the others by weight. Undefined when the sources hold fewer than `total` episodes together.
 */
export function allocateSample(total: number, sources: ReadonlyArray<{ weight: number; available: number }>): number[] | undefined {
  const available = sources.reduce((sum, source) => sum + source.available, 0);
  if (available < total) return undefined;
  const counts = sources.map(() => 0);
  let remaining = total;
  while (remaining > 0) {
    const open = sources
      .map((source, index) => ({ index, weight: source.weight, room: source.available - counts[index]! }))
      .filter((source) => source.room > 0);
    const weightSum = open.reduce((sum, source) => sum + source.weight, 0);
    const shares = open.map((source) => {
      const exact = (remaining * source.weight) / weightSum;
      return { ...source, base: Math.min(Math.floor(exact), source.room), fraction: exact - Math.floor(exact) };
    });
    let given = 0;
    for (const share of shares) {
      counts[share.index]! += share.base;
      given += share.base;
    }
    // What rounding (or a full source) left goes one each, largest remainder first.
    const takers = shares
      .filter((share) => share.base < share.room)
      .sort((first, second) => second.fraction - first.fraction || first.index - second.index);
    for (const share of takers) {
      if (given >= remaining) break;
      counts[share.index]! += 1;
      given += 1;
    }
    remaining -= given;
  }
  return counts;
}

/**
 * `count` of the candidates chosen by a seeded hash (the same seed always picks the same ones),
 * ascending: those whose sha256 of `seed:datasetId:index` starts with the smallest 32 bits (ties to
 * the smaller index). Key and index are packed into one 64-bit number and sorted natively: the sort
 * of an object per candidate cost as much as the hashing on a 100,000-episode dataset.
 */
export function chooseEpisodes(params: { candidates: number[]; count: number; seed: number; datasetId: string }): number[] {
  if (params.count >= params.candidates.length) return [...params.candidates];
  const prefix = `${params.seed}:${params.datasetId}:`;
  const packed = new BigUint64Array(params.candidates.length);
  for (let position = 0; position < params.candidates.length; position++) {
    const index = params.candidates[position]!;
    const key = hash('sha256', `${prefix}${index}`, 'buffer').readUInt32BE(0);
    packed[position] = (BigInt(key) << 32n) | BigInt(index);
  }
  packed.sort();
  const chosen: number[] = [];
  for (let position = 0; position < params.count; position++) chosen.push(Number(packed[position]! & 0xffffffffn));
  return chosen.sort((first, second) => first - second);
}
