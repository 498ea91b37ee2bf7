// Architecture rules of DESIGN.md's code map, checked by `npm run lint`.
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'Import cycles make start-up order and reasoning fragile.', from: {}, to: { circular: true } },
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
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['types', 'import', 'default'], extensions: ['.ts', '.tsx', '.js'] },
  },
};
