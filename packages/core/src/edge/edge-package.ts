import { createHash, createPublicKey, verify } from 'node:crypto';
import tarStream from 'tar-stream';
import { EDGE_LICENSE_FORMAT, edgePackageFiles, type EdgeKeysView, type EdgeLicense } from '@kura/schema';

// An edge package is a plain .tar of a few files (edgePackageFiles): small enough to build and to
// read in memory (a policy bundle is at most KURA_POLICY_MAX_BUNDLE_BYTES).

/** The tar of `files`, in the order given; fixed owner and mtime, so the same files give the same bytes. */
export async function packEdgePackage(files: Array<[string, Uint8Array]>, mtime: Date): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const [name, bytes] of files)
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name, size: bytes.byteLength, mode: 0o644, mtime, uid: 0, gid: 0, uname: '', gname: '' }, Buffer.from(bytes), (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** The regular files of a package tar, by name (anything else in it is refused). */
export async function unpackEdgePackage(tar: Uint8Array): Promise<Map<string, Buffer>> {
  const extract = tarStream.extract();
  const files = new Map<string, Buffer>();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      if (header.type !== 'file' || !Object.values(edgePackageFiles).includes(header.name as never)) {
        stream.resume();
        reject(new EdgePackageError('EDGE_PACKAGE_INVALID', `the package holds ${header.name} (${header.type}), which no package has`));
        return;
      }
      const parts: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => parts.push(chunk));
      stream.on('end', () => {
        files.set(header.name, Buffer.concat(parts));
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', (error: Error) =>
      reject(new EdgePackageError('EDGE_PACKAGE_INVALID', `the package is not a tar: ${error.message}`)),
    );
  });
  extract.end(Buffer.from(tar));
  await done;
  return files;
}

export type EdgePackageCode =
  'EDGE_PACKAGE_INVALID' | 'EDGE_KEY_UNKNOWN' | 'EDGE_SIGNATURE_INVALID' | 'EDGE_POLICY_TAMPERED' | 'EDGE_LICENSE_EXPIRED';

/** Why a package must not run, with its code (docs/edge.md, "Checks"). */
export class EdgePackageError extends Error {
  constructor(
    readonly code: EdgePackageCode,
    message: string,
  ) {
    super(message);
    this.name = 'EdgePackageError';
  }
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * Checks a package as a device must before loading it: the license's signature by a published key,
 * the sha256 of the policy bundle and of its normalization, and the expiry against `now`. Returns
 * the license. Order matters: nothing in license.json is believed before its signature is checked.
 */
export function verifyEdgePackage(files: ReadonlyMap<string, Uint8Array>, keys: EdgeKeysView, now = new Date()): EdgeLicense {
  const need = (name: string) => {
    const bytes = files.get(name);
    if (!bytes) throw new EdgePackageError('EDGE_PACKAGE_INVALID', `the package has no ${name}`);
    return bytes;
  };
  const licenseBytes = need(edgePackageFiles.license);
  const signature = Buffer.from(Buffer.from(need(edgePackageFiles.signature)).toString('utf8').trim(), 'base64url');
  let claimed: { kid?: unknown };
  try {
    claimed = JSON.parse(Buffer.from(licenseBytes).toString('utf8')) as { kid?: unknown };
  } catch {
    throw new EdgePackageError('EDGE_PACKAGE_INVALID', `${edgePackageFiles.license} is not JSON`);
  }
  const jwk = keys.keys.find((key) => key.kid === claimed.kid);
  if (!jwk)
    throw new EdgePackageError(
      'EDGE_KEY_UNKNOWN',
      `the license is signed by key ${String(claimed.kid)}, which is not among the keys given`,
    );
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
  if (!verify(null, licenseBytes, publicKey, signature))
    throw new EdgePackageError(
      'EDGE_SIGNATURE_INVALID',
      `the signature of ${edgePackageFiles.license} does not verify with key ${jwk.kid}`,
    );
  if ((claimed as { format?: unknown }).format !== EDGE_LICENSE_FORMAT)
    throw new EdgePackageError('EDGE_PACKAGE_INVALID', `the license's format is not ${EDGE_LICENSE_FORMAT as string}`);
  const license = claimed as EdgeLicense;
  if (sha256(need(edgePackageFiles.bundle)) !== license.policy.sha256)
    throw new EdgePackageError('EDGE_POLICY_TAMPERED', `${edgePackageFiles.bundle} is not the policy the license names (sha256 differs)`);
  const normalization = files.get(edgePackageFiles.normalization);
  if ((normalization ? sha256(normalization) : null) !== license.policy.normalizationSha256)
    throw new EdgePackageError('EDGE_POLICY_TAMPERED', `${edgePackageFiles.normalization} is not the one the license names`);
  if (!(now < new Date(license.expiresAt)))
    throw new EdgePackageError('EDGE_LICENSE_EXPIRED', `the license expired at ${license.expiresAt}; renew the export`);
  return license;
}
