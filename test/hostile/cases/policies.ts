// Policy bundles: archives that climb out, link to the canary or explode; manifests that lie or ask
// for absurd shapes; scripts that loop, eat memory, reach for the host or answer garbage; ONNX files
// that are not models or read files next to them. Each must end `rejected` with its code — never stay
// `validating`, never bring the api down.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { CaseContext, HostileCase } from '../corpus.js';
import { policyAndWait } from '../corpus.js';
import { gzip, overlappingZip, tar, tarOf, zip, zipOf, type TarEntry } from '../builders.js';

const stateManifest = {
  name: 'hostile',
  runtime: 'js',
  entry: 'policy.js',
  observation: ['observation.state'],
  observationShapes: { 'observation.state': [2] },
  action: { shape: [2] },
};
const goodScript = 'function act(o) { const s = o["observation.state"]; return [s[0], s[1]]; }';
const onnxManifest = {
  name: 'hostile-onnx',
  runtime: 'onnx',
  entry: 'model.onnx',
  observation: ['observation.state'],
  action: { shape: [3] },
};

const onnxFixture = (name: string) =>
  readFile(fileURLToPath(new URL(`../../../packages/core/src/policies/runtimes/fixtures/${name}`, import.meta.url)));

/** A case whose bundle is built at run time (it may need the canary's paths) and uploaded by developer A. */
function bundleCase(
  name: string,
  expect: string | readonly string[],
  bundle: (context: CaseContext) => Uint8Array | Promise<Uint8Array>,
): HostileCase {
  return {
    family: 'policies',
    name: `policies/${name}`,
    expect,
    async run(context) {
      return (await policyAndWait(context, await bundle(context))).outcome;
    },
  };
}

/** A .tar.gz bundle of policy.json (the manifest, or raw text) and other files. */
const bundleOf = (manifest: Record<string, unknown> | string, files: Record<string, string | Uint8Array> = { 'policy.js': goodScript }) =>
  gzip(tarOf({ 'policy.json': typeof manifest === 'string' ? manifest : JSON.stringify(manifest), ...files }));

/** A bundle of the state manifest with `script` as its entry. */
const scriptBundle = (script: string | Uint8Array) => bundleOf(stateManifest, { 'policy.js': script });

/** The state manifest with some fields replaced. */
const manifestWith = (fields: Record<string, unknown>) => bundleOf({ ...stateManifest, ...fields });

/** A tar.gz of the manifest and script plus one hostile entry. */
const withEntry = (entry: TarEntry) =>
  gzip(tar([{ name: 'policy.json', data: JSON.stringify(stateManifest) }, { name: 'policy.js', data: goodScript }, entry]));

function archiveCases(): HostileCase[] {
  return [
    bundleCase('archive/not-an-archive', 'rejected BUNDLE_NOT_ARCHIVE', () => Buffer.from('#!/bin/sh\nrm -rf /\n'.repeat(40))),
    bundleCase('archive/only-a-folder', 'rejected BUNDLE_EMPTY', () => gzip(tar([{ name: 'policy/', type: '5' }]))),
    bundleCase('archive/dot-dot-entry', 'rejected BUNDLE_PATH_TRAVERSAL', () => withEntry({ name: '../../evil.js', data: 'x' })),
    bundleCase('archive/absolute-entry', 'rejected BUNDLE_PATH_TRAVERSAL', () =>
      withEntry({ name: '/tmp/kura-hostile-evil.js', data: 'x' }),
    ),
    bundleCase('archive/symlink-to-the-canary', 'rejected BUNDLE_LINK_REFUSED', ({ canary }) =>
      gzip(
        tar([
          { name: 'policy.json', data: JSON.stringify(stateManifest) },
          { name: 'policy.js', type: '2', linkname: canary.textFiles[0]! },
        ]),
      ),
    ),
    bundleCase('archive/hardlink-to-the-canary', 'rejected BUNDLE_LINK_REFUSED', ({ canary }) =>
      gzip(
        tar([
          { name: 'policy.json', data: JSON.stringify(stateManifest) },
          { name: 'policy.js', type: '1', linkname: canary.textFiles[1]! },
        ]),
      ),
    ),
    bundleCase('archive/zip-symlink', 'rejected BUNDLE_LINK_REFUSED', ({ canary }) =>
      zip([
        { name: 'policy.json', content: JSON.stringify(stateManifest) },
        { name: 'policy.js', content: canary.textFiles[0]!, unixMode: 0o120777 },
      ]),
    ),
    bundleCase('archive/character-device', 'rejected BUNDLE_ENTRY_UNSUPPORTED', () => withEntry({ name: 'tty', type: '3' })),
    bundleCase('archive/gzip-bomb', 'rejected BUNDLE_TOO_LARGE', () =>
      gzip(
        tar([
          { name: 'policy.json', data: JSON.stringify(stateManifest) },
          { name: 'zeros.bin', data: Buffer.alloc(128 * 1024 * 1024) },
        ]),
      ),
    ),
    bundleCase('archive/zip-bomb', 'rejected BUNDLE_TOO_LARGE', () =>
      zip([
        { name: 'policy.json', content: JSON.stringify(stateManifest) },
        { name: 'zeros.bin', content: Buffer.alloc(64 * 1024 * 1024) },
      ]),
    ),
    bundleCase('archive/overlapping-zip-entries', 'rejected BUNDLE_OVERLAPPING_ENTRIES', () =>
      overlappingZip(50, Buffer.alloc(1024 * 1024)),
    ),
    bundleCase('archive/policy-json-twice', 'rejected BUNDLE_DUPLICATE_PATH', () =>
      gzip(
        tar([
          { name: 'policy.json', data: '{}' },
          { name: 'policy.json', data: JSON.stringify(stateManifest) },
        ]),
      ),
    ),
    bundleCase('archive/truncated-tar-gz', 'rejected BUNDLE_CORRUPT', () => {
      const whole = bundleOf(stateManifest);
      return whole.subarray(0, Math.floor(whole.length / 2));
    }),
    bundleCase('archive/zip-lying-about-its-size', 'rejected BUNDLE_CORRUPT', () =>
      zip([{ name: 'policy.json', content: JSON.stringify(stateManifest), declaredUncompressed: 10 }]),
    ),
  ];
}

function manifestCases(): HostileCase[] {
  return [
    bundleCase('manifest/missing', 'rejected MANIFEST_MISSING', () => gzip(tarOf({ 'policy.js': goodScript }))),
    bundleCase('manifest/two-top-folders', 'rejected MANIFEST_MISSING', () =>
      gzip(
        tarOf({
          'a/policy.json': JSON.stringify(stateManifest),
          'a/policy.js': goodScript,
          'b/policy.json': JSON.stringify(stateManifest),
        }),
      ),
    ),
    bundleCase('manifest/not-json', 'rejected MANIFEST_INVALID', () => bundleOf('{"name": "x", runtime: js}')),
    bundleCase('manifest/json-array', 'rejected MANIFEST_INVALID', () => bundleOf('[]')),
    bundleCase('manifest/invalid-utf8', 'rejected MANIFEST_INVALID', () =>
      gzip(tarOf({ 'policy.json': Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'policy.js': goodScript })),
    ),
    bundleCase('manifest/unknown-runtime', 'rejected MANIFEST_INVALID', () => manifestWith({ runtime: 'ruby' })),
    bundleCase('manifest/no-observation', 'rejected MANIFEST_INVALID', () => manifestWith({ observation: [] })),
    bundleCase('manifest/observation-not-a-feature-name', 'rejected MANIFEST_INVALID', () =>
      manifestWith({ observation: ['../../etc/passwd'] }),
    ),
    bundleCase('manifest/action-of-zero', 'rejected MANIFEST_INVALID', () => manifestWith({ action: { shape: [0] } })),
    bundleCase('manifest/action-chunk-too-large', 'rejected MANIFEST_INVALID', () => manifestWith({ action: { shape: [1025, 4096] } })),
    bundleCase('manifest/action-of-rank-3', 'rejected MANIFEST_INVALID', () => manifestWith({ action: { shape: [2, 2, 2] } })),
    // #19: a 10^12-number synthetic observation kept validation busy forever.
    bundleCase('manifest/observation-shape-1e6-by-1e6', ['rejected MANIFEST_INVALID', 'rejected POLICY_OBSERVATION_TOO_LARGE'], () =>
      manifestWith({ observationShapes: { 'observation.state': [1_000_000, 1_000_000] } }),
    ),
    bundleCase('manifest/observation-shape-2^53', ['rejected MANIFEST_INVALID', 'rejected POLICY_OBSERVATION_TOO_LARGE'], () =>
      manifestWith({ observationShapes: { 'observation.state': [2 ** 53] } }),
    ),
    bundleCase('manifest/observation-shape-rank-9', ['rejected MANIFEST_INVALID', 'rejected POLICY_OBSERVATION_TOO_LARGE'], () =>
      manifestWith({ observationShapes: { 'observation.state': [1, 1, 1, 1, 1, 1, 1, 1, 2] } }),
    ),
    bundleCase('manifest/observation-shape-negative', 'rejected MANIFEST_INVALID', () =>
      manifestWith({ observationShapes: { 'observation.state': [-7] } }),
    ),
    bundleCase('manifest/name-with-nul', 'rejected MANIFEST_INVALID', () => manifestWith({ name: 'hostile\u0000' })),
    bundleCase('manifest/description-with-nul', 'rejected MANIFEST_INVALID', () => manifestWith({ description: 'ends here\u0000 or not' })),
    bundleCase('manifest/entry-climbing-out', 'rejected BUNDLE_PATH_TRAVERSAL', () => manifestWith({ entry: '../../../../canary.txt' })),
    bundleCase('manifest/entry-absolute-canary', 'rejected BUNDLE_PATH_TRAVERSAL', ({ canary }) =>
      manifestWith({ entry: canary.textFiles[0] }),
    ),
    bundleCase('manifest/entry-missing', 'rejected BUNDLE_ENTRY_MISSING', () => manifestWith({ entry: 'nowhere.js' })),
    bundleCase('manifest/entry-is-a-folder', 'rejected BUNDLE_ENTRY_MISSING', () =>
      gzip(
        tar([
          { name: 'policy.json', data: JSON.stringify({ ...stateManifest, entry: 'lib' }) },
          { name: 'lib/', type: '5' },
          { name: 'lib/a.js', data: goodScript },
        ]),
      ),
    ),
    {
      family: 'policies',
      name: 'policies/manifest/normalization-from-private-dataset-of-b',
      expect: 'rejected NORMALIZATION_DATASET_NOT_FOUND',
      async run(context) {
        const bundle = manifestWith({ normalization: { datasetId: context.world.datasets.bPrivate, mode: 'zscore' } });
        return (await policyAndWait(context, bundle)).outcome;
      },
    },
    bundleCase('manifest/normalization-from-unknown-dataset', 'rejected NORMALIZATION_DATASET_NOT_FOUND', () =>
      manifestWith({ normalization: { datasetId: 'ds_0000000000000000', mode: 'zscore' } }),
    ),
  ];
}

function scriptCases(): HostileCase[] {
  const script = (name: string, expect: string | readonly string[], source: string | Uint8Array) =>
    bundleCase(`js/${name}`, expect, () => scriptBundle(source));
  return [
    script('loop-at-top-level', 'rejected POLICY_TIMEOUT', 'while (true) {}\nfunction act() { return [0, 0]; }'),
    script('loop-in-act', 'rejected POLICY_TIMEOUT', 'function act() { for (;;) {} }'),
    // The top level has 1 s: on a machine loaded by other suites, V8's last-ditch collections near the
    // limit can outlast it. Either code ends it; runtimes.spec pins POLICY_MEMORY_LIMIT with a generous clock.
    script(
      'memory-at-top-level',
      ['rejected POLICY_MEMORY_LIMIT', 'rejected POLICY_TIMEOUT'],
      'const hoard = []; while (true) hoard.push(new Array(1e6).fill(1.5));\nfunction act() { return [0, 0]; }',
    ),
    // Past the memory limit or the 50 ms call limit, whichever comes first: both end it.
    script(
      'memory-in-act',
      ['rejected POLICY_MEMORY_LIMIT', 'rejected POLICY_TIMEOUT'],
      'function act() { const hoard = []; for (;;) hoard.push(new Float64Array(1e6)); }',
    ),
    script(
      'huge-typed-array',
      ['rejected POLICY_MEMORY_LIMIT', 'rejected POLICY_THREW'],
      'const big = new Float64Array(2 ** 30);\nfunction act() { return [big[0], 0]; }',
    ),
    script('syntax-error', 'rejected POLICY_SYNTAX_ERROR', 'function act( { return [0, 0]; }'),
    script(
      'invalid-utf8',
      'rejected POLICY_SYNTAX_ERROR',
      Buffer.concat([Buffer.from('function act() { return [0, 0]; } // '), Buffer.from([0xc3, 0x28, 0xff])]),
    ),
    script('no-act', 'rejected POLICY_NO_ACT', 'function notAct() { return [0, 0]; }'),
    script('act-throws', 'rejected POLICY_THREW', 'function act() { throw new Error("no"); }'),
    script('act-of-wrong-length', 'rejected POLICY_BAD_OUTPUT', 'function act() { return [0, 0, 0]; }'),
    script('act-returns-nan', 'rejected POLICY_BAD_OUTPUT', 'function act() { return [NaN, 0]; }'),
    script('act-returns-float32-overflow', 'rejected POLICY_BAD_OUTPUT', 'function act() { return [1e39, 0]; }'),
    script('act-returns-a-string', 'rejected POLICY_BAD_OUTPUT', 'function act() { return "0,0"; }'),
    script('act-returns-50-million', 'rejected POLICY_BAD_OUTPUT', 'function act() { return new Array(5e7); }'),
    script('act-is-async', 'rejected POLICY_BAD_OUTPUT', 'async function act() { return [0, 0]; }'),
    script(
      'act-returns-a-proxy',
      ['rejected POLICY_BAD_OUTPUT', 'rejected POLICY_THREW'],
      'function act() { return new Proxy([0, 0], { get() { throw new Error("trap"); } }); }',
    ),
    script('require-fs', 'rejected POLICY_THREW', 'function act() { return require("fs").readFileSync("/etc/passwd"); }'),
    script(
      'process-via-constructor',
      'rejected POLICY_THREW',
      'function act() { return this.constructor.constructor("return process")().mainModule.require("fs"); }',
    ),
    script(
      'dynamic-import',
      ['rejected POLICY_THREW', 'rejected POLICY_SYNTAX_ERROR', 'rejected POLICY_BAD_OUTPUT'],
      'function act() { import("fs"); return [0, 0]; }',
    ),
    script(
      'deep-recursion',
      // The stack overflows within ~10 ms; on a machine busy with other suites that can pass the 50 ms call limit.
      ['rejected POLICY_THREW', 'rejected POLICY_TIMEOUT'],
      'function down(n) { return down(n + 1) + 1; }\nfunction act() { return [down(0), 0]; }',
    ),
    script('webassembly', 'rejected POLICY_THREW', 'function act() { new WebAssembly.Memory({ initial: 65536 }); return [0, 0]; }'),
    script('shared-array-buffer', 'rejected POLICY_THREW', 'function act() { new SharedArrayBuffer(1 << 30); return [0, 0]; }'),
    script(
      'poisoned-prototypes',
      'rejected POLICY_BAD_OUTPUT',
      'Array.isArray = () => true; Number.isFinite = () => true; Object.defineProperty(Array.prototype, "length", {});\nfunction act() { return { length: 2 }; }',
    ),
    script(
      'one-allocation-past-the-isolate',
      ['rejected POLICY_MEMORY_LIMIT', 'rejected POLICY_TIMEOUT', 'rejected POLICY_CRASHED'],
      'function act() { new Array(5e7).fill(0); return [0, 0]; }',
    ),
    script('onnx-bytes-as-script', 'rejected POLICY_SYNTAX_ERROR', Buffer.from([0x08, 0x07, 0x12, 0x00, 0xff, 0xfe, 0x00, 0x01])),
  ];
}

function onnxCases(): HostileCase[] {
  const model = (
    name: string,
    expect: string | readonly string[],
    bytes: () => Promise<Uint8Array> | Uint8Array,
    manifest: Record<string, unknown> = onnxManifest,
  ) => bundleCase(`onnx/${name}`, expect, async () => bundleOf(manifest, { 'model.onnx': await bytes() }));
  return [
    model('garbage', 'rejected ONNX_INVALID', () => Buffer.from('this is not a protobuf at all'.repeat(100))),
    model('empty-file', 'rejected ONNX_INVALID', () => Buffer.alloc(0)),
    model('truncated', 'rejected ONNX_INVALID', () => onnxFixture('broken.onnx')),
    model('protobuf-declaring-2GB-field', 'rejected ONNX_INVALID', () => Buffer.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00])),
    model('external-data-next-to-it', 'rejected ONNX_EXTERNAL_DATA', () => onnxFixture('external-data.onnx'), {
      ...onnxManifest,
      action: { shape: [4] },
    }),
    model(
      'input-of-10^10-numbers',
      ['rejected POLICY_OBSERVATION_TOO_LARGE', 'rejected ONNX_INPUT_MISMATCH'],
      () => onnxFixture('huge-input.onnx'),
      {
        ...onnxManifest,
        action: { shape: [1] },
      },
    ),
    model('output-larger-than-the-action', ['rejected POLICY_BAD_OUTPUT', 'rejected ONNX_INPUT_MISMATCH'], () =>
      onnxFixture('wrong-output-4x5.onnx'),
    ),
    // Since #14 a model runs in a jailed host the api kills past the call limit (+250 ms) or its memory.
    model('loop-of-10^15-trips', 'rejected POLICY_TIMEOUT', () => onnxFixture('loop-forever.onnx'), {
      ...onnxManifest,
      action: { shape: [4] },
    }),
    model('allocates-10-GB', ['rejected POLICY_THREW', 'rejected POLICY_MEMORY_LIMIT'], () => onnxFixture('allocate-huge.onnx'), {
      ...onnxManifest,
      action: { shape: [4] },
    }),
    model('script-as-model', 'rejected ONNX_INVALID', () => Buffer.from(goodScript)),
    model('zip-as-model', 'rejected ONNX_INVALID', () => zipOf({ 'a.txt': 'not a model' })),
  ];
}

/** Python policies (#14): what they reach for is not there; each ends coded in its own host. */
function pythonCases(): HostileCase[] {
  const python = (name: string, expect: string | readonly string[], body: (context: CaseContext) => string) =>
    bundleCase(`python/${name}`, expect, (context) =>
      bundleOf(
        { ...stateManifest, name: 'hostile-python', runtime: 'python', entry: 'policy.py' },
        {
          'policy.py': `def act(observation, context):\n${body(context)
            .split('\n')
            .map((line) => `    ${line}`)
            .join('\n')}\n    return [0.0, 0.0]\n`,
        },
      ),
    );
  return [
    python('reads-etc-shadow', 'rejected POLICY_THREW', () => 'open("/etc/shadow").read()'),
    python('reads-the-canary', 'rejected POLICY_THREW', ({ canary }) => `open(${JSON.stringify(canary.textFiles[0])}).read()`),
    python('reads-the-tmp-canary', 'rejected POLICY_THREW', ({ canary }) => `open(${JSON.stringify(canary.textFiles[1])}).read()`),
    python(
      'connects-to-postgres',
      'rejected POLICY_THREW',
      () => 'import socket; socket.create_connection(("127.0.0.1", 5432), timeout=0.2)',
    ),
    python(
      'os-system',
      'rejected POLICY_THREW',
      () => 'import os\nassert os.system("cat /etc/shadow > /tmp/x") == 0 and open("/tmp/x").read()',
    ),
    python(
      'subprocess',
      ['rejected POLICY_THREW', 'rejected POLICY_TIMEOUT'],
      () => 'import subprocess; subprocess.run(["cat", "/etc/shadow"], check=True)',
    ),
    python(
      'fork-bomb',
      ['rejected POLICY_THREW', 'rejected POLICY_TIMEOUT', 'rejected POLICY_CRASHED'],
      () => 'import os\nwhile True: os.fork()',
    ),
    python('loops', 'rejected POLICY_TIMEOUT', () => 'while True: pass'),
    python(
      'eats-memory',
      ['rejected POLICY_MEMORY_LIMIT', 'rejected POLICY_TIMEOUT', 'rejected POLICY_CRASHED'],
      () => 'x = []\nwhile True: x.append(bytearray(10**7))',
    ),
  ];
}

export function policyCases(): HostileCase[] {
  return [...archiveCases(), ...manifestCases(), ...scriptCases(), ...onnxCases(), ...pythonCases()];
}
