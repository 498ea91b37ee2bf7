// Architecture rules of the code map (docs/architecture.md), checked by `npm run lint`.

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
  'inference',
  'health',
];
const coreLayerRules = coreLayers.map((folder, index) => ({
  name: `core-layer-${folder}`,
  severity: 'error',
  comment: `packages/core/src/${folder} sits below ${coreLayers.slice(index + 1).join(', ')} and the composition root (core.module.ts, index.ts).`,
  from: { path: `^packages/core/src/${folder}/` },
  to: { path: `^packages/core/src/(${[...coreLayers.slice(index + 1), '[^/]+\\.ts$'].join('|')})` },
}));

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
      to: { path: '^(packages/(core|formats|sdk)|apps)/' },
    },
    {
      name: 'jail-depends-on-nothing',
      severity: 'error',
      comment: 'The jail is the security boundary: small, and importing none of what it confines.',
      from: { path: '^packages/jail/' },
      to: { path: '^(packages/(core|formats|sdk|schema)|apps)/' },
    },
    { name: 'packages-never-import-apps', severity: 'error', from: { path: '^packages/' }, to: { path: '^apps/' } },
    { name: 'api-and-worker-are-separate', severity: 'error', from: { path: '^apps/worker/' }, to: { path: '^apps/api/' } },
    { name: 'worker-is-separate-from-api', severity: 'error', from: { path: '^apps/api/' }, to: { path: '^apps/worker/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|node_modules|generated)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['types', 'import', 'default'],
      extensions: ['.ts', '.tsx', '.js'],
    },
  },
};
