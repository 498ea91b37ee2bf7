// `npm run bench -- <name…>`: speed and memory figures, each against a baseline measured in the same run.
import { benchIngest } from './ingest.mjs';
import { benchSlices } from './slices.mjs';
import { benchPolicies } from './policies.mjs';
import { benchInference } from './inference.mjs';
import { benchTraining } from './training.mjs';
import { benchMcap } from './mcap.mjs';
import { benchScale } from './scale.mjs';
import { benchScaleDataset } from './scale-dataset.mjs';

const benches = {
  ingest: benchIngest,
  slices: benchSlices,
  policies: benchPolicies,
  inference: benchInference,
  training: benchTraining,
  mcap: benchMcap,
  scale: benchScale,
  // Part two of `scale` alone.
  'scale-dataset': benchScaleDataset,
};
const names = process.argv.slice(2);
const selected = names.length > 0 ? names : Object.keys(benches);
for (const name of selected) {
  if (!benches[name]) {
    console.error(`unknown bench "${name}"; known: ${Object.keys(benches).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n== ${name}`);
  await benches[name]();
}
