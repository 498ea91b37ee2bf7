import { stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { policyLimits, policyManifestSchema, type PolicyManifest } from '@kura/schema';
import type { ArchiveLimits } from '../common/archive.js';
import { rejectBundle, unpackBundle } from '../common/bundle.js';

const MiB = 1024 * 1024;

/** What a policy bundle may expand to and hold: the deployment's limits (KURA_POLICY_*, KURA_ARCHIVE_*). */
export interface PolicyBundleLimits {
  maxBundleBytes: number;
  maxModelBytes: number;
  archive: { maxTotalExpansionRatio: number; maxExpandedBytes: number };
}

/**
 * Extracts a policy bundle (a file) into `destination` under the archive rules and returns its checked
 * manifest and the folder holding it. Validation and the edge runner read bundles with this one piece.
 */
export async function unpackPolicyBundle(
  bundle: string,
  destination: string,
  limits: PolicyBundleLimits,
  signal: AbortSignal,
): Promise<{ manifest: PolicyManifest; root: string }> {
  const archive: ArchiveLimits = {
    maxExpandedBytes: Math.min(4 * limits.maxBundleBytes, 1024 * MiB, limits.archive.maxExpandedBytes),
    maxTotalExpansionRatio: limits.archive.maxTotalExpansionRatio,
    maxFiles: 10_000,
  };
  const { manifest, root } = await unpackBundle({
    file: bundle,
    destination,
    kind: 'policy',
    manifestName: 'policy.json',
    maxManifestBytes: policyLimits.maxManifestBytes,
    largeManifestHint: 'give large statistics through normalization.datasetId',
    schema: policyManifestSchema,
    limits: archive,
    signal,
  });
  return { manifest, root };
}

/** The entry file inside the bundle folder `root`: present, not outside it, not too large to load. */
export async function policyEntryPath(manifest: PolicyManifest, root: string, maxModelBytes: number): Promise<string> {
  const path = resolve(root, manifest.entry);
  if (!path.startsWith(root + sep))
    rejectBundle('BUNDLE_PATH_TRAVERSAL', `entry "${manifest.entry}" points outside the bundle`, { field: 'entry' }, manifest);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile())
    rejectBundle(
      'BUNDLE_ENTRY_MISSING',
      `entry "${manifest.entry}" is not a file in the bundle`,
      { file: manifest.entry, field: 'entry' },
      manifest,
    );
  if (manifest.runtime === 'onnx' && info!.size > maxModelBytes) {
    rejectBundle(
      'ONNX_TOO_LARGE',
      `model "${manifest.entry}" has ${info!.size} bytes; the limit is ${maxModelBytes} (KURA_POLICY_MAX_MODEL_BYTES)`,
      { file: manifest.entry },
      manifest,
    );
  }
  return path;
}
