// Lint step: a clone of this repository is the whole product, so no tracked file may reach outside
// it for fixtures or documents (the steering folder beside the clone is not there for users).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const outside = ['..', 'shared'].join('/'); // spelled in pieces so this file does not match itself
const workPath = ['', 'work', 'shared'].join('/');
const files = execFileSync('git', ['ls-files', '-z'], { encoding: 'utf8' }).split('\0').filter(Boolean);
const hits = [];
for (const file of files) {
  if (/\.(parquet|mp4|mcap|h5|hdf5|arrow|onnx|png|jpe?g|tfrecord.*|gz|zip|tar)$/.test(file)) continue;
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    continue; // deleted in the work tree but still in the index
  }
  text.split('\n').forEach((line, index) => {
    if (line.includes(outside) || line.includes(workPath)) hits.push(`${file}:${index + 1}: ${line.trim()}`);
  });
}
if (hits.length > 0) {
  console.error(`These lines point outside the repository (copy what they need into it, e.g. test/fixtures/):\n${hits.join('\n')}`);
  process.exit(1);
}
