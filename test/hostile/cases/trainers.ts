// Trainer bundles and training runs (#15): archives that climb out or explode, manifests that lie,
// sources that do not parse; then trainers that reach for the network, the host's files (the
// canary, Kura's data folder), write outside /out, leave a link or 10 GB, fork, eat memory, spin,
// sleep past their budget, flood the log or print garbage metrics. Each ends with its code; none
// may bring the api down, and nothing a run sends back (record, metrics, logs) may hold a canary.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trainingLimits } from '@kura/schema';
import type { CaseContext, HostileCase } from '../corpus.js';
import { JOB_TIMEOUT_MS } from '../corpus.js';
import { gzip, ndjson, tar, tarOf, zipOf } from '../builders.js';
import { statusOf, type Reply } from '../kura.js';

const manifest = {
  name: 'hostile-trainer',
  runtime: 'python',
  entry: 'train.py',
  features: ['observation.state', 'action'],
  resources: { cpuSeconds: 20, memoryMb: 512, wallSeconds: 30 },
};
type Resources = typeof manifest.resources;

/** A .tar.gz trainer bundle: trainer.json (an object or raw text) and files. */
const bundleOf = (trainerJson: Record<string, unknown> | string, files: Record<string, string | Uint8Array> = { 'train.py': 'pass\n' }) =>
  gzip(tarOf({ 'trainer.json': typeof trainerJson === 'string' ? trainerJson : JSON.stringify(trainerJson), ...files }));

const firstCode = (reply: Reply, field: 'errors' | 'error'): string => {
  const value = reply.body?.[field];
  const first = (Array.isArray(value) ? value[0] : value) as { code?: unknown } | undefined;
  return typeof first?.code === 'string' ? first.code : '(no error)';
};

/** Uploads a trainer as developer A and waits for its validation: `ready`, `rejected <code>`, or the HTTP refusal. */
async function trainerAndWait(context: CaseContext, bundle: Uint8Array): Promise<{ outcome: string; id?: string }> {
  const { client, world } = context;
  const key = world.keys.developerA.key;
  const accepted = await client.post('/v1/trainers', { key, body: bundle, contentType: 'application/octet-stream' });
  if (accepted.status !== 202) return { outcome: statusOf(accepted) };
  const id = String(accepted.body?.id);
  const trainer = await client.until(
    `/v1/trainers/${id}`,
    (reply) => reply.status !== 200 || reply.body?.status !== 'validating',
    key,
    JOB_TIMEOUT_MS,
  );
  if (trainer.status !== 200) return { outcome: statusOf(trainer) };
  const status = String(trainer.body?.status);
  if (status === 'rejected') return { outcome: `rejected ${firstCode(trainer, 'errors')}`, id };
  return { outcome: status, id };
}

function bundleCase(name: string, expect: string, bundle: (context: CaseContext) => Uint8Array): HostileCase {
  return {
    family: 'trainers',
    name: `trainers/${name}`,
    expect,
    run: async (context) => (await trainerAndWait(context, bundle(context))).outcome,
  };
}

interface RunResult {
  outcome: string;
  record: Reply;
  logs: string;
  metrics: Record<string, Array<[number, number]>>;
}

/**
 * Uploads `script` as a trainer and runs it (developer A, on A's private dataset unless `datasetId`
 * says otherwise), then reads the run's record, logs and metrics — every answer is scanned for the
 * canary. The outcome is `succeeded` or `failed <code>` (or where it got stuck).
 */
async function trainAndWait(
  context: CaseContext,
  script: string,
  options: { resources?: Resources; datasetId?: string; files?: Record<string, string | Uint8Array> } = {},
): Promise<RunResult> {
  const { client, world } = context;
  const key = world.keys.developerA.key;
  const trainer = await trainerAndWait(
    context,
    bundleOf({ ...manifest, resources: options.resources ?? manifest.resources }, { 'train.py': script, ...options.files }),
  );
  const nothing = { record: { status: 0 } as Reply, logs: '', metrics: {} };
  if (trainer.outcome !== 'ready') return { outcome: `trainer ${trainer.outcome}`, ...nothing };
  const accepted = await client.post('/v1/trainings', {
    key,
    json: { trainerId: trainer.id, sources: [{ datasetId: options.datasetId ?? world.datasets.aPrivate }] },
  });
  if (accepted.status !== 201 && accepted.status !== 202) return { outcome: statusOf(accepted), ...nothing };
  const id = String(accepted.body?.id);
  const ended = ['succeeded', 'failed', 'cancelled'];
  const record = await client.until(
    `/v1/trainings/${id}`,
    (reply) => reply.status !== 200 || ended.includes(String(reply.body?.status)),
    key,
    JOB_TIMEOUT_MS,
  );
  const status = String(record.body?.status);
  const logs = (await client.get(`/v1/trainings/${id}/logs`, { key })).text;
  const metrics = ((await client.get(`/v1/trainings/${id}/metrics`, { key })).body?.series ?? {}) as RunResult['metrics'];
  const outcome = status === 'failed' ? `failed ${firstCode(record, 'error')}` : ended.includes(status) ? status : `still ${status}`;
  return { outcome, record, logs, metrics };
}

const last = (result: RunResult, name: string): number | undefined => result.metrics[name]?.at(-1)?.[1];

function runCase(
  name: string,
  expect: string | readonly string[],
  run: (context: CaseContext) => Promise<string>,
  maxMs?: number,
): HostileCase {
  return { family: 'trainers', name: `trainers/${name}`, expect, run, ...(maxMs ? { maxMs } : {}) };
}

// -------------------------------------------------------------------------------------------- bundles

function bundleCases(): HostileCase[] {
  return [
    bundleCase('bundle/not-an-archive', 'rejected BUNDLE_NOT_ARCHIVE', () => Buffer.from('import os\nos.system("curl evil")\n'.repeat(20))),
    bundleCase('bundle/dot-dot-entry', 'rejected BUNDLE_PATH_TRAVERSAL', () =>
      gzip(
        tar([
          { name: 'trainer.json', data: JSON.stringify(manifest) },
          { name: 'train.py', data: 'pass\n' },
          { name: '../../evil.py', data: 'x' },
        ]),
      ),
    ),
    bundleCase('bundle/absolute-entry', 'rejected BUNDLE_PATH_TRAVERSAL', () =>
      gzip(
        tar([
          { name: 'trainer.json', data: JSON.stringify(manifest) },
          { name: '/tmp/kura-hostile-trainer.py', data: 'x' },
        ]),
      ),
    ),
    bundleCase('bundle/entry-is-a-symlink-to-the-canary', 'rejected BUNDLE_LINK_REFUSED', ({ canary }) =>
      gzip(
        tar([
          { name: 'trainer.json', data: JSON.stringify(manifest) },
          { name: 'train.py', type: '2', linkname: canary.textFiles[0]! },
        ]),
      ),
    ),
    bundleCase('bundle/hardlink-to-the-canary', 'rejected BUNDLE_LINK_REFUSED', ({ canary }) =>
      gzip(
        tar([
          { name: 'trainer.json', data: JSON.stringify(manifest) },
          { name: 'train.py', type: '1', linkname: canary.textFiles[0]! },
        ]),
      ),
    ),
    bundleCase('bundle/device-entry', 'rejected BUNDLE_ENTRY_UNSUPPORTED', () =>
      gzip(
        tar([
          { name: 'trainer.json', data: JSON.stringify(manifest) },
          { name: 'train.py', type: '3', data: '' },
        ]),
      ),
    ),
    // 40 MiB of zeros gzip to ~40 KiB: over the bundle cap once unpacked.
    bundleCase('bundle/gzip-bomb', 'rejected BUNDLE_TOO_LARGE', () =>
      gzip(tarOf({ 'trainer.json': JSON.stringify(manifest), 'train.py': 'pass\n', 'weights.bin': new Uint8Array(40 * 1024 * 1024) })),
    ),
    bundleCase('bundle/empty-archive', 'rejected BUNDLE_EMPTY', () => gzip(tar([]))),
    bundleCase('manifest/missing', 'rejected MANIFEST_MISSING', () => gzip(tarOf({ 'train.py': 'pass\n' }))),
    bundleCase('manifest/not-json', 'rejected MANIFEST_INVALID', () => bundleOf('{"name": "x", runtime: python')),
    bundleCase('manifest/runtime-is-node', 'rejected MANIFEST_INVALID', () => bundleOf({ ...manifest, runtime: 'node' })),
    bundleCase('manifest/entry-climbs-out', 'rejected TRAINER_ENTRY_MISSING', () =>
      bundleOf({ ...manifest, entry: '../../../usr/lib/python3/os.py' }),
    ),
    bundleCase('manifest/entry-not-in-the-bundle', 'rejected TRAINER_ENTRY_MISSING', () => bundleOf({ ...manifest, entry: 'missing.py' })),
    bundleCase('manifest/absurd-resources', 'rejected MANIFEST_INVALID', () =>
      bundleOf({ ...manifest, resources: { cpuSeconds: 1e12, memoryMb: 1e9, wallSeconds: -1 } }),
    ),
    bundleCase('manifest/proto-keys', 'rejected MANIFEST_INVALID', () =>
      bundleOf(`{"__proto__": {"polluted": true}, ${JSON.stringify(manifest).slice(1)}`),
    ),
    bundleCase('manifest/feature-names-with-paths', 'rejected MANIFEST_INVALID', () =>
      bundleOf({ ...manifest, features: ['../../etc/passwd', 'action'] }),
    ),
    bundleCase('source/syntax-error', 'rejected TRAINER_SYNTAX_ERROR', () => bundleOf(manifest, { 'train.py': 'def train(:\n    pass\n' })),
    bundleCase('source/nul-bytes', 'rejected TRAINER_SYNTAX_ERROR', () => bundleOf(manifest, { 'train.py': 'print(1)\n\0\0\0\n' })),
    // The syntax check compiles; it never runs the module: an import-time bomb does nothing here.
    bundleCase('source/import-time-bomb-is-not-run', 'ready', () =>
      bundleOf(manifest, { 'train.py': 'import os\nwhile True:\n    os.fork()\n' }),
    ),
    bundleCase('zip/links-and-traversal-in-a-zip', 'rejected BUNDLE_PATH_TRAVERSAL', () =>
      zipOf({ 'trainer.json': JSON.stringify(manifest), 'train.py': 'pass\n', '../escape.py': 'x' }),
    ),
  ];
}

// ------------------------------------------------------------------------------------------------ runs

/** An ONNX policy manifest as a Python string literal, for trainers that leave one in /out. */
const onnxPolicyJson = JSON.stringify(
  JSON.stringify({
    name: 'left-by-a-trainer',
    runtime: 'onnx',
    entry: 'model.onnx',
    observation: ['observation.state'],
    action: { shape: [2] },
  }),
);

/** A trainer that exits 0 without a model: its run ends `failed TRAINING_OUTPUT_MISSING`. */
const NO_MODEL = 'failed TRAINING_OUTPUT_MISSING';

function runCases(): HostileCase[] {
  return [
    runCase('run/walks-the-host-for-the-canary-and-kura-data', `${NO_MODEL}, found nothing`, async (context) => {
      // The needle is built at run time: the bundle itself must not hold the token (stored blobs are scanned).
      const pieces = [context.canary.token.slice(0, 6), context.canary.token.slice(6)];
      const script = `
import json, os
needle = (${JSON.stringify(pieces[0])} + ${JSON.stringify(pieces[1])}).encode()
found = 0
readable = 0
for path in ${JSON.stringify([...context.canary.textFiles, join(context.client.kura.dataDir, 'blobs')])}:
    try:
        open(path, "rb").read()
        readable += 1
    except OSError:
        pass
for base in ["/", "/tmp", "/root", "/work", "/proc/1/root"]:
    for folder, dirs, files in os.walk(base):
        if folder.startswith(("/proc", "/sys", "/usr", "/dev")) and folder != "/proc/1/root":
            dirs[:] = []
            continue
        for name in files:
            try:
                if needle in open(os.path.join(folder, name), "rb").read(1 << 20):
                    found += 1
            except OSError:
                pass
print(json.dumps({"canaries": found, "readable": readable, "env": len(os.environ.get("KURA_ADMIN_KEY", ""))}))
`;
      const result = await trainAndWait(context, script);
      const clean = last(result, 'canaries') === 0 && last(result, 'readable') === 0 && last(result, 'env') === 0;
      return `${result.outcome}, ${clean ? 'found nothing' : JSON.stringify(result.metrics)}`;
    }),
    runCase('run/reaches-for-the-network', `${NO_MODEL}, no connection`, async (context) => {
      const port = new URL(context.client.kura.baseUrl).port;
      const result = await trainAndWait(
        context,
        `
import json, socket
connected = 0
for host, port in [("127.0.0.1", ${port}), ("127.0.0.1", 5432), ("127.0.0.1", 6379), ("1.1.1.1", 53)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        connected += 1
    except OSError:
        pass
try:
    socket.getaddrinfo("example.com", 80)
    connected += 1
except OSError:
    pass
print(json.dumps({"connected": connected}))
`,
      );
      return `${result.outcome}, ${last(result, 'connected') === 0 ? 'no connection' : `connected ${last(result, 'connected')}`}`;
    }),
    runCase('run/writes-outside-out', `${NO_MODEL}, nothing written`, async (context) => {
      const result = await trainAndWait(
        context,
        `
import json, os
written = 0
for path in ["/code/extra.py", "/data/meta.json", "/data/new.npy", "/usr/lib/evil", "/evil", os.environ["KURA_DATA_DIR"] + "/../escape"]:
    try:
        open(path, "w").write("x")
        written += 1
    except OSError:
        pass
print(json.dumps({"written": written}))
`,
      );
      return `${result.outcome}, ${last(result, 'written') === 0 ? 'nothing written' : `wrote ${last(result, 'written')}`}`;
    }),
    runCase('run/model-is-a-symlink-to-the-canary', 'failed TRAINING_OUTPUT_INVALID', async (context) => {
      const result = await trainAndWait(
        context,
        `
import json, os
out = os.environ["KURA_OUT_DIR"]
os.symlink(${JSON.stringify(context.canary.textFiles[1] ?? context.canary.textFiles[0])}, os.path.join(out, "model.onnx"))
open(os.path.join(out, "policy.json"), "w").write(${onnxPolicyJson})
`,
      );
      return result.outcome;
    }),
    runCase(
      'run/policy-json-is-a-symlink',
      'failed TRAINING_OUTPUT_INVALID',
      async (context) =>
        (
          await trainAndWait(
            context,
            `
import os
out = os.environ["KURA_OUT_DIR"]
open(os.path.join(out, "model.onnx"), "wb").write(b"not a model")
os.symlink("/etc/passwd", os.path.join(out, "policy.json"))
`,
          )
        ).outcome,
    ),
    runCase('run/model-is-garbage', 'failed TRAINING_POLICY_REJECTED', async (context) => {
      const result = await trainAndWait(
        context,
        `
import os
out = os.environ["KURA_OUT_DIR"]
open(os.path.join(out, "model.onnx"), "wb").write(os.urandom(4096))
open(os.path.join(out, "policy.json"), "w").write(${onnxPolicyJson})
`,
      );
      return result.outcome;
    }),
    runCase(
      'run/ten-gigabytes-of-output',
      'failed TRAINING_OUTPUT_TOO_LARGE',
      async (context) =>
        (
          await trainAndWait(
            context,
            `
import os
with open(os.path.join(os.environ["KURA_OUT_DIR"], "model.onnx"), "wb") as f:
    for _ in range(10 * 1024):
        f.write(b"x" * (1 << 20))
`,
          )
        ).outcome,
    ),
    runCase(
      'run/memory-bomb',
      'failed TRAINING_MEMORY_LIMIT',
      async (context) =>
        (
          await trainAndWait(context, 'blocks = []\nwhile True:\n    blocks.append(bytearray(64 << 20))\n', {
            resources: { ...manifest.resources, memoryMb: 256 },
          })
        ).outcome,
    ),
    runCase(
      'run/cpu-spin',
      'failed TRAINING_CPU_LIMIT',
      async (context) =>
        (await trainAndWait(context, 'while True:\n    pass\n', { resources: { ...manifest.resources, cpuSeconds: 2 } })).outcome,
    ),
    runCase(
      'run/sleeps-past-its-wall-clock',
      'failed TRAINING_TIMEOUT',
      async (context) =>
        (await trainAndWait(context, 'import time\ntime.sleep(120)\n', { resources: { ...manifest.resources, wallSeconds: 2 } })).outcome,
    ),
    // Contained while the rest of Kura goes on: an upload publishes and an act call answers meanwhile.
    runCase(
      'run/fork-bomb-while-an-upload-and-an-act-proceed',
      `${NO_MODEL}, forks bounded, upload published, act 200`,
      async (context) => {
        const { client, world } = context;
        const training = trainAndWait(
          context,
          `
import json, os, time
children = 0
for _ in range(5000):
    try:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        children += 1
    except OSError:
        break
print(json.dumps({"children": children}))
`,
        );
        await new Promise((resolve) => setTimeout(resolve, 300));
        const datasetId = await world.newDataset(client);
        const accepted = await client.post(`/v1/datasets/${datasetId}/uploads?format=kura-ndjson`, {
          key: world.keys.operatorA.key,
          body: ndjson({ episodes: 2 }),
        });
        const act = await client.post(`/v1/policies/${world.policies.aPrivate}/act`, {
          key: world.keys.developerA.key,
          json: { observation: { 'observation.state': [0, 0] } },
        });
        const upload = await client.until(
          `/v1/uploads/${String(accepted.body?.id)}`,
          (reply) => ['published', 'failed'].includes(String(reply.body?.status)),
          world.keys.operatorA.key,
          JOB_TIMEOUT_MS,
        );
        const result = await training;
        const children = last(result, 'children');
        return `${result.outcome}, forks ${children !== undefined && children < 64 ? 'bounded' : String(children)}, upload ${String(upload.body?.status)}, act ${statusOf(act)}`;
      },
    ),
    runCase('run/hundred-megabytes-of-log', `${NO_MODEL}, log capped`, async (context) => {
      const result = await trainAndWait(
        context,
        'import sys\nline = "y" * 1023 + "\\n"\nfor _ in range(100 * 1024):\n    sys.stdout.write(line)\n',
      );
      return `${result.outcome}, log ${result.logs.length <= trainingLimits.maxLogBytes + 4096 ? 'capped' : `${result.logs.length} bytes`}`;
    }),
    runCase('run/garbage-metric-lines', `${NO_MODEL}, metrics loss`, async (context) => {
      const result = await trainAndWait(
        context,
        `
import json, sys
print('{"step": 1, "loss": 0.5}')
print('{"step": NaN, "loss": Infinity}')
print('{"loss": "0.1", "step": 2}')
print('{"step": 3, "loss": [1, 2]}')
print('{]')
print('{"__proto__": {"polluted": 1}, "step": 4}')
print("{" + '"a": ' * 100000)
sys.stdout.write('{"step": 5, "loss": 0.25}' + "x" * 2000000 + "\\n")
print(json.dumps({"step": 6, "loss": 0.125}))
`,
      );
      return `${result.outcome}, metrics ${Object.keys(result.metrics).sort().join(' ')}`;
    }),
    runCase(
      "run/on-another-owner's-private-dataset",
      '422 DATASET_NOT_FOUND',
      async (context) => (await trainAndWait(context, 'pass\n', { datasetId: context.world.datasets.bPrivate })).outcome,
    ),
    // B's sample dataset: A may train on all of it, but what comes back is guarded.
    runCase('run/prints-the-data-of-a-sample-dataset', 'failed TRAINING_FAILED, log guarded', async (context) => {
      const result = await trainAndWait(
        context,
        `
import json, os, sys
data = open(os.path.join(os.environ["KURA_DATA_DIR"], "observation.state.npy"), "rb").read()
print(json.dumps({"step": 1, "bytes": len(data)}))
for index in range(20000):
    print("row", index, data[128 + index % 256:200 + index % 256].hex())
raise SystemExit("dumped " + data[200:2000].hex())
`,
        { datasetId: context.world.datasets.bSample },
      );
      const guarded = !result.logs.includes('row 0 ') && result.logs.length < trainingLimits.guardedLogTailBytes + 1024;
      const message = String((result.record.body?.error as { message?: string } | undefined)?.message ?? '');
      return `${result.outcome}, log ${guarded && message.length < 2048 ? 'guarded' : `not guarded (${result.logs.length} bytes, message ${message.length})`}`;
    }),
    runCase('run/control-bc-mlp-trains-a-ready-policy', 'succeeded, policy ready', async (context) => {
      const folder = fileURLToPath(new URL('../../../examples/trainers/bc-mlp/', import.meta.url));
      const files: Record<string, string> = {};
      for (const name of await readdir(folder))
        if (name.endsWith('.py') || name === 'trainer.json') files[name] = await readFile(join(folder, name), 'utf8');
      const bcManifest = JSON.parse(files['trainer.json']!) as typeof manifest;
      const trainer = await trainerAndWait(context, gzip(tarOf(files)));
      if (trainer.outcome !== 'ready') return `trainer ${trainer.outcome}`;
      const key = context.world.keys.developerA.key;
      const accepted = await context.client.post('/v1/trainings', {
        key,
        json: { trainerId: trainer.id, sources: [{ datasetId: context.world.datasets.aPrivate }], hyperparameters: { epochs: 2 } },
      });
      if (accepted.status !== 201 && accepted.status !== 202) return statusOf(accepted);
      const record = await context.client.until(
        `/v1/trainings/${String(accepted.body?.id)}`,
        (reply) => reply.status !== 200 || ['succeeded', 'failed', 'cancelled'].includes(String(reply.body?.status)),
        key,
        JOB_TIMEOUT_MS,
      );
      if (record.body?.status !== 'succeeded') return `${String(record.body?.status)} ${firstCode(record, 'error')} (${bcManifest.name})`;
      const policy = await context.client.get(`/v1/policies/${String(record.body?.policyId)}`, { key });
      return `succeeded, policy ${String(policy.body?.status)}`;
    }),
  ];
}

export function trainerCases(): HostileCase[] {
  return [...bundleCases(), ...runCases()];
}
