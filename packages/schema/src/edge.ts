import { z } from 'zod';
import type { EdgeExportTerm } from './ledger.js';

// Edge packages (docs/edge.md): a policy packaged to run on a robot's own computer, under a license
// the deployment signs with Ed25519, which a device checks offline against the published keys.

/** The files of an edge package (a plain `.tar`), by role. */
export const edgePackageFiles = {
  /** The license, as signed (the signature covers these exact bytes). */
  license: 'license.json',
  /** Base64url Ed25519 signature of license.json by the key `license.kid`. */
  signature: 'license.sig',
  /** The policy's manifest (also inside the bundle), for reading without unpacking. */
  manifest: 'policy.json',
  /** The policy bundle as uploaded or trained (its sha256 is `license.policy.sha256`). */
  bundle: 'policy.tar.gz',
  /** Normalization statistics resolved at export, when the policy normalizes by a dataset's (sha256 in the license). */
  normalization: 'normalization.json',
} as const;

export const EDGE_LICENSE_FORMAT = 'kura-edge-license/1';
/** The longest an export may run before it must be renewed. */
export const EDGE_MAX_LIFETIME_DAYS = 366;

/** `POST /v1/policies/:id/edge-exports` body. */
export const edgeExportRequestSchema = z.strictObject({
  /** The robot computer the package is for: the license names it, and usage reports must come from it. */
  deviceId: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : -'),
  /** When the package stops running (until renewed): in the future, at most EDGE_MAX_LIFETIME_DAYS away. */
  expiresAt: z.coerce.date(),
  /** Calls the package may make before it must be renewed; unlimited when absent. */
  callQuota: z.number().int().positive().max(1e15).optional(),
});
export type EdgeExportRequest = z.infer<typeof edgeExportRequestSchema>;

/** license.json: what the deployment signs. */
export interface EdgeLicense {
  format: typeof EDGE_LICENSE_FORMAT;
  exportId: string;
  /** The signing key (`GET /v1/edge/keys`). */
  kid: string;
  issuedAt: string;
  expiresAt: string;
  licensee: { keyId: string };
  deviceId: string;
  callQuota: number | null;
  policy: {
    id: string;
    name: string | null;
    version: number | null;
    runtime: string;
    /** sha256 of policy.tar.gz. */
    sha256: string;
    /** sha256 of normalization.json, or null when the package has none. */
    normalizationSha256: string | null;
  };
  /** The policy's training run's sources with their share; empty for an uploaded policy. */
  lineage: Array<{ datasetId: string; version: number; weight: number; share: number }>;
  /** Each lineage dataset's terms when the package was made: what the edge calls are priced by. */
  terms: Array<{
    datasetId: string;
    termsId: string | null;
    edgeExport: EdgeExportTerm;
    feeMinorPer1000: number;
    currency: string;
  }>;
}

export interface EdgeExportView {
  id: string;
  policyId: string;
  deviceId: string;
  expiresAt: string;
  callQuota: number | null;
  kid: string;
  createdAt: string;
  revokedAt: string | null;
  license: EdgeLicense;
  usage: EdgeUsageView;
}

/** One published key, JWK style (RFC 8037). */
export interface EdgeKeyJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  use: 'sig';
  alg: 'EdDSA';
}

/** `GET /v1/edge/keys`: the keys a device checks licenses against (the signing one, and retired ones while their exports live). */
export interface EdgeKeysView {
  keys: EdgeKeyJwk[];
}

export const EDGE_USAGE_FORMAT = 'kura-edge-usage/1';
/** Most records one usage report may carry (a device with more sends several reports). */
export const EDGE_MAX_RECORDS_PER_REPORT = 10_000;

/**
 * One record of a device's usage log: the calls made in a window of time, chained to the record
 * before it by `prev` (the first one's `prev` is the export's genesis hash). `hash` is the sha256 of
 * the other fields (docs/edge.md, "The usage log"), so a changed, dropped or reordered record shows.
 */
export const edgeUsageRecordSchema = z.strictObject({
  exportId: z.string().min(1).max(64),
  seq: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  /** UTC with milliseconds, as `Date.toISOString()` writes it. */
  from: z.iso.datetime({ precision: 3 }),
  to: z.iso.datetime({ precision: 3 }),
  calls: z.number().int().nonnegative().max(1e15),
  prev: z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in hex'),
  hash: z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in hex'),
});
export type EdgeUsageRecord = z.infer<typeof edgeUsageRecordSchema>;

/** `POST /v1/edge-exports/:id/usage` body: records in order, continuing the last one the deployment accepted. */
export const edgeUsageReportSchema = z.strictObject({
  records: z.array(edgeUsageRecordSchema).max(EDGE_MAX_RECORDS_PER_REPORT),
});
export type EdgeUsageReport = z.infer<typeof edgeUsageReportSchema>;

/** `POST /v1/edge-exports/:id/renew` body. */
export const edgeRenewRequestSchema = z.strictObject({
  /** The new expiry: in the future, at most EDGE_MAX_LIFETIME_DAYS away. */
  expiresAt: z.coerce.date(),
});
export type EdgeRenewRequest = z.infer<typeof edgeRenewRequestSchema>;

/** What the deployment has of an export's usage log. */
export interface EdgeUsageView {
  /** The last accepted record (0 and the genesis hash before the first report). */
  lastSeq: number;
  lastHash: string;
  /** The end of the last accepted record's window. */
  lastTo: string | null;
  /** Calls in all accepted records. */
  calls: number;
  lastReportAt: string | null;
}

/** The reply to a usage report. */
export interface EdgeUsageReportView extends EdgeUsageView {
  exportId: string;
  /** Records this report added, and those it repeated (already accepted, ignored). */
  accepted: number;
  duplicates: number;
  /** True when the accepted calls pass the export's call quota (they are still counted). */
  overQuota: boolean;
}

/** The reply to a renewal: license.json and license.sig for the device's package. */
export interface EdgeRenewView {
  export: EdgeExportView;
  /** license.json, exactly the text signed. */
  license: string;
  /** license.sig: its base64url Ed25519 signature. */
  signature: string;
}
