// Edge exports: usage reports and renewals that are malformed, forged, out of chain, or someone
// else's. The world's export is never reported to, so every case meets the same empty chain.
import { genesisHash, sealRecord } from '@kura/core';
import type { HostileCase } from '../corpus.js';
import type { World } from '../world.js';
import { requestCase } from './requests.js';

const at = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();
/** The export's first record, sealed: valid but for what `fields` change (the hash is recomputed). */
const first = (world: World, fields: Record<string, unknown> = {}) =>
  sealRecord({
    exportId: world.edgeExports.aPrivate,
    seq: 1,
    from: at(-60_000),
    to: at(-1_000),
    calls: 3,
    prev: genesisHash(world.edgeExports.aPrivate),
    ...fields,
  });

const report = (name: string, expect: string | readonly string[], records: (world: World) => unknown, key?: (world: World) => string) =>
  requestCase({
    family: key ? 'auth' : 'http',
    name: `${key ? 'auth' : 'http'}/edge/${name}`,
    expect,
    method: 'POST',
    path: (world) => `/v1/edge-exports/${world.edgeExports.aPrivate}/usage`,
    options: (world) => ({ key: key ? key(world) : world.keys.developerA.key, json: { records: records(world) } }),
  });

export function edgeCases(): HostileCase[] {
  const invalid = '400 VALIDATION_FAILED';
  return [
    report('report-records-not-a-list', invalid, () => 'all of them'),
    report('report-negative-calls', invalid, (world) => [{ ...first(world), calls: -5 }]),
    report('report-fractional-seq', invalid, (world) => [{ ...first(world), seq: 1.5 }]),
    report('report-calls-past-1e15', invalid, (world) => [{ ...first(world), calls: 2 ** 60 }]),
    report('report-hash-not-hex', invalid, (world) => [{ ...first(world), hash: 'z'.repeat(64) }]),
    report('report-nul-in-export-id', invalid, (world) => [{ ...first(world), exportId: `${world.edgeExports.aPrivate}\u0000` }]),
    report('report-time-without-milliseconds', invalid, (world) => [{ ...first(world), to: '2026-12-07T04:00:00Z' }]),
    report('report-extra-field', invalid, (world) => [{ ...first(world), signedBy: 'me' }]),
    report('report-10001-records', [invalid, '413 PAYLOAD_TOO_LARGE'], (world) => Array.from({ length: 10_001 }, () => first(world))),
    report('report-forged-calls', '409 EDGE_USAGE_TAMPERED', (world) => [{ ...first(world), calls: 3_000_000 }]),
    report('report-skips-ahead', '409 EDGE_USAGE_GAP', (world) => [first(world, { seq: 7 })]),
    report('report-chain-from-elsewhere', '409 EDGE_USAGE_CHAIN_BROKEN', (world) => [first(world, { prev: 'f'.repeat(64) })]),
    report('report-window-in-2030', '409 EDGE_USAGE_TIME_INVALID', (world) => [first(world, { to: '2030-01-01T00:00:00.000Z' })]),
    report('report-window-backwards', '409 EDGE_USAGE_TIME_INVALID', (world) => [first(world, { from: at(-1_000), to: at(-60_000) })]),
    report('report-of-another-export', '409 EDGE_USAGE_WRONG_EXPORT', (world) => [first(world, { exportId: 'edx_0000000000000000' })]),
    report(
      'report-by-another-key',
      '404 EDGE_EXPORT_NOT_FOUND',
      (world) => [first(world)],
      (world) => world.keys.developerB.key,
    ),
    report(
      'report-by-a-revoked-key',
      '401 INVALID_API_KEY',
      (world) => [first(world)],
      (world) => world.keys.revoked.key,
    ),
    requestCase({
      family: 'http',
      name: 'http/edge/renew-before-any-report',
      expect: '409 EDGE_REPORT_REQUIRED',
      method: 'POST',
      path: (world) => `/v1/edge-exports/${world.edgeExports.aPrivate}/renew`,
      options: (world) => ({ key: world.keys.developerA.key, json: { expiresAt: at(7 * 86_400_000) } }),
    }),
    requestCase({
      family: 'http',
      name: 'http/edge/renew-into-the-past',
      expect: '400 EDGE_EXPIRY_INVALID',
      method: 'POST',
      path: (world) => `/v1/edge-exports/${world.edgeExports.aPrivate}/renew`,
      options: (world) => ({ key: world.keys.developerA.key, json: { expiresAt: '2001-01-01T00:00:00Z' } }),
    }),
    requestCase({
      family: 'auth',
      name: 'auth/edge/renew-by-another-key',
      expect: '404 EDGE_EXPORT_NOT_FOUND',
      method: 'POST',
      path: (world) => `/v1/edge-exports/${world.edgeExports.aPrivate}/renew`,
      options: (world) => ({ key: world.keys.userB.key, json: { expiresAt: at(7 * 86_400_000) } }),
    }),
  ];
}
