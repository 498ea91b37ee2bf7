// Architecture rules of the code map (docs/architecture.md), checked by `npm run lint`.
const { existsSync, readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

const manifestOf = (folder) => JSON.parse(readFileSync(join(__dirname, folder, 'package.json'), 'utf8'));
const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// packages/core's folders, lowest first: each imports only folders before it in this list, so no
// arrow runs back up and no two domains form a cycle. A new domain takes its place here.
const coreLayers = [
  'errors',
  'logging',
  'common',
  'config',
  'database',
  'jobs',
  'auth',
  'blobs',
  'usage',
  'robots',
  'datasets',
  'slices',
  'uploads',
  'policies',
  'training',
  'ledger',
  'inference',
  'edge',
  'health',
];
const coreLayerRules = coreLayers.map((folder, index) => ({
  name: `core-layer-${folder}`,
  severity: 'error',
  comment: `packages/core/src/${folder} sits below ${coreLayers.slice(index + 1).join(', ')} and the composition root (core.module.ts, index.ts).`,
  from: { path: `^packages/core/src/${folder}/` },
  to: { path: `^packages/core/src/(${[...coreLayers.slice(index + 1), '[^/]+\\.ts$'].join('|')})` },
}));

// Workspace packages resolve to their folders, not to node_modules, so npm's dependency types do not
// cover them: each package may import only the workspace packages its package.json names.
const workspaces = ['packages', 'apps']
  .flatMap((root) => readdirSync(join(__dirname, root)).map((name) => `${root}/${name}`))
  .filter((folder) => existsSync(join(__dirname, folder, 'package.json')))
  .map((folder) => ({ folder, manifest: manifestOf(folder) }));
const workspaceDependencyRules = workspaces.flatMap(({ folder, manifest }) => {
  const declared = new Set(Object.keys({ ...manifest.dependencies, ...manifest.devDependencies, ...manifest.peerDependencies }));
  const undeclared = workspaces
    .filter((other) => other.folder !== folder && !declared.has(other.manifest.name))
    .map((other) => other.folder);
  if (undeclared.length === 0) return [];
  return [
    {
      name: 'workspace-dependencies-are-declared',
      severity: 'error',
      comment: `${folder} imports only the workspace packages its package.json names.`,
      from: { path: `^${folder}/` },
      to: { path: `^(${undeclared.join('|')})/` },
    },
  ];
});

// Test code (specs, shared suites, test helpers, test/) runs under the root's jest and may use the root's devDependencies too.
const testCode = '(\\.(spec|int-spec|e2e-spec|contract)\\.ts$|/testing/|^test/)';
const rootDevDependencies = `(^|/)node_modules/(${Object.keys(manifestOf('.').devDependencies).map(escapeRegExp).join('|')})/`;

module.exports = {
  forbidden: [
    ...coreLayerRules,
    {
      name: 'core-folders-are-listed',
      severity: 'error',
      comment: 'Every folder of packages/core/src has a place in coreLayers (generated code excepted).',
      from: { path: '^packages/core/src/[^/]+/', pathNot: `^packages/core/src/(${coreLayers.join('|')}|generated)/` },
      to: {},
    },
    {
      name: 'domain-index-is-for-the-composition-root',
      severity: 'error',
      comment: "A domain's index.ts is its public surface for CoreModule and @kura/core; inside core, import the file itself.",
      from: { path: '^packages/core/src/[^/]+/' },
      to: { path: '^packages/core/src/[^/]+/index\\.ts$' },
    },
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'Import cycles make start-up order and reasoning fragile.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'schema-depends-on-nothing',
      severity: 'error',
      from: { path: '^packages/schema/' },
      to: { path: '^(packages/(core|formats|jail|sdk)|apps)/' },
    },
    {
      name: 'jail-depends-on-nothing',
      severity: 'error',
      comment: 'The jail is the security boundary: small, and importing none of what it confines.',
      from: { path: '^packages/jail/' },
      to: { path: '^(packages/(core|formats|sdk|schema)|apps)/' },
    },
    {
      name: 'formats-depends-on-the-contract-only',
      severity: 'error',
      comment: 'Formats read and write data; of the workspace packages they use @kura/schema only.',
      from: { path: '^packages/formats/' },
      to: { path: '^(packages/(core|jail|sdk)|apps)/' },
    },
    {
      name: 'sdk-depends-on-the-contract-only',
      severity: 'error',
      comment: 'The SDK talks to the api over HTTP: of the workspace packages it imports @kura/schema only, never the server.',
      from: { path: '^packages/sdk/' },
      to: { path: '^(packages/(core|formats|jail)|apps)/' },
    },
    {
      name: 'sdk-loads-the-edge-runner-in-its-edge-commands-only',
      severity: 'error',
      comment: 'The client and the other commands stay light: only `kura edge` loads @kura/edge (and with it the runtimes).',
      from: { path: '^packages/sdk/', pathNot: '^packages/sdk/src/cli/commands/edge\\.ts$' },
      to: { path: '^packages/edge/' },
    },
    {
      name: 'edge-uses-the-runtime-entry-only',
      severity: 'error',
      comment: 'The edge runner takes of @kura/core only `@kura/core/edge-runtime` (no Nest, Prisma or services: it runs without a database).',
      from: { path: '^packages/edge/' },
      to: { path: '^packages/core/src/', pathNot: '^packages/core/src/edge-runtime\\.ts$' },
    },
    {
      name: 'web-depends-on-the-contract-only',
      severity: 'error',
      comment: 'The web viewer talks to the api over HTTP: of the workspace packages it imports @kura/schema only.',
      from: { path: '^apps/web/' },
      to: { path: '^(packages/(core|formats|jail|sdk)|apps/(?!web/))' },
    },
    {
      name: 'dependencies-are-declared',
      severity: 'error',
      comment:
        "Every npm package a file imports is in its own package's package.json (the nearest one: options.combinedDependencies is off), so each package installs and runs on its own.",
      from: { pathNot: testCode },
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'test-dependencies-are-declared',
      severity: 'error',
      comment: "Test code imports what its package's package.json or the root's devDependencies declare.",
      from: { path: testCode },
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'], pathNot: rootDevDependencies },
    },
    ...workspaceDependencyRules,
    { name: 'packages-never-import-apps', severity: 'error', from: { path: '^packages/' }, to: { path: '^apps/' } },
    { name: 'api-and-worker-are-separate', severity: 'error', from: { path: '^apps/worker/' }, to: { path: '^apps/api/' } },
    { name: 'worker-is-separate-from-api', severity: 'error', from: { path: '^apps/api/' }, to: { path: '^apps/worker/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Build output and generated code of the workspaces; npm packages stay in (not followed) so their dependency types are checked.
    exclude: { path: '^(apps|packages)/[^/]+/(dist|src/generated)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['types', 'import', 'default'],
      extensions: ['.ts', '.tsx', '.js'],
    },
  },
};
