import { open, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { findUnstorableText, formatTextPath } from '@kura/schema';
import type { z } from 'zod';
import { detectArchiveKind, extractArchive, type ArchiveLimits, type ExtractedFile } from './archive.js';

/** A coded problem of an uploaded bundle, with where it is. */
export interface BundleProblem {
  code: string;
  message: string;
  location?: { file?: string; field?: string; line?: number };
}

/** Why a bundle is refused: one or more coded problems (the manifest too, when it was read). */
export class BundleRejection extends Error {
  constructor(
    readonly problems: BundleProblem[],
    readonly manifest: unknown = null,
  ) {
    super(problems.map((problem) => problem.message).join('; '));
    this.name = 'BundleRejection';
  }
}

export const rejectBundle = (code: string, message: string, location?: BundleProblem['location'], manifest: unknown = null): never => {
  throw new BundleRejection([{ code, message, ...(location ? { location } : {}) }], manifest);
};

export interface UnpackBundleParams<S extends z.ZodType> {
  /** The stored bundle (.tar.gz, .tar or .zip). */
  file: string;
  destination: string;
  /** What the bundle is, for messages: "policy", "trainer". */
  kind: string;
  /** The manifest's name at the bundle's top (or in its one top-level folder): policy.json, trainer.json. */
  manifestName: string;
  maxManifestBytes: number;
  /** Said after a too-large manifest's limit: what to do instead. */
  largeManifestHint?: string;
  /** What the manifest must be; its issues become MANIFEST_INVALID naming their field. */
  schema: S;
  limits: ArchiveLimits;
  signal: AbortSignal;
}

/**
 * Unpacks an uploaded bundle under the archive rules (no links out, no absolute paths, expansion and
 * file-count limits) and reads its manifest: present, small, JSON Postgres can store, and valid.
 * Refusals are BundleRejections with codes (ARCHIVE_* as BUNDLE_*, MANIFEST_MISSING, MANIFEST_INVALID).
 */
export async function unpackBundle<S extends z.ZodType>(
  params: UnpackBundleParams<S>,
): Promise<{ manifest: z.infer<S>; root: string; files: ExtractedFile[] }> {
  const head = Buffer.alloc(512);
  const handle = await open(params.file, 'r');
  try {
    await handle.read(head, 0, 512, 0);
  } finally {
    await handle.close();
  }
  const kind = detectArchiveKind(head);
  if (!kind) rejectBundle('BUNDLE_NOT_ARCHIVE', `a ${params.kind} bundle is a .tar.gz, .tar or .zip holding ${params.manifestName}`);
  let files: ExtractedFile[];
  try {
    ({ files } = await extractArchive({
      file: params.file,
      kind: kind!,
      destination: params.destination,
      signal: params.signal,
      limits: params.limits,
    }));
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ARCHIVE_')) {
      const file = (error as { location?: { file?: string } }).location?.file;
      rejectBundle(code.replace(/^ARCHIVE_/, 'BUNDLE_'), (error as Error).message, file ? { file } : undefined);
    }
    throw error;
  }
  const name = params.manifestName;
  const nested = files.filter((file) => file.path.split('/').length === 2 && file.path.endsWith(`/${name}`));
  const manifestFile = files.find((file) => file.path === name) ?? (nested.length === 1 ? nested[0] : undefined);
  if (!manifestFile) return rejectBundle('MANIFEST_MISSING', `the bundle has no ${name} at its top (or in its one top-level folder)`);
  const root = resolve(params.destination, manifestFile.path.includes('/') ? manifestFile.path.split('/')[0]! : '.');
  const manifestPath = join(params.destination, manifestFile.path);
  const { size } = await stat(manifestPath);
  if (size > params.maxManifestBytes)
    rejectBundle(
      'MANIFEST_INVALID',
      `${name} has ${size} bytes; it may have at most ${params.maxManifestBytes}${params.largeManifestHint ? ` (${params.largeManifestHint})` : ''}`,
      { file: manifestFile.path },
    );
  let json: unknown;
  try {
    json = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (error) {
    return rejectBundle('MANIFEST_INVALID', `${name} is not valid JSON: ${(error as Error).message}`, { file: manifestFile.path });
  }
  // The manifest is stored as jsonb, which cannot hold every string JSON can.
  const unstorable = findUnstorableText(json);
  if (unstorable) {
    const field = formatTextPath(unstorable.path);
    rejectBundle('MANIFEST_INVALID', `${name} ${field ? `${field}: ` : ''}${unstorable.problem}`, { file: manifestFile.path, field });
  }
  const parsed = params.schema.safeParse(json);
  if (!parsed.success) {
    throw new BundleRejection(
      parsed.error.issues.map((issue) => ({
        code: 'MANIFEST_INVALID',
        message: `${name} ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`,
        location: { file: manifestFile.path, field: issue.path.join('.') },
      })),
    );
  }
  return { manifest: parsed.data, root, files };
}
