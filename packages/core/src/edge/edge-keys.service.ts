import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { EdgeKeyJwk, EdgeKeysView } from '@kura/schema';
import { newId } from '../common/ids.js';
import { Prisma, PrismaClient } from '../database/prisma.js';

/**
 * The deployment's Ed25519 signing keys (docs/edge.md, "Keys"). The newest key that is not retired
 * signs; one is made on first need. Rotation retires it and makes the next; a retired key stays
 * published while an export it signed has not expired, so devices can still check those.
 */
@Injectable()
export class EdgeKeysService {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  /** The signing key (made when there is none): its kid, to name in what it signs, and a base64url signer. */
  async signer(): Promise<{ kid: string; sign: (bytes: Uint8Array) => string }> {
    const key = await this.signingKey();
    const privateKey = createPrivateKey(key.privateKey);
    return { kid: key.kid, sign: (bytes) => sign(null, bytes, privateKey).toString('base64url') };
  }

  /** The published keys, JWKS style. */
  async published(): Promise<EdgeKeysView> {
    const now = new Date();
    const keys = await this.prisma.edgeSigningKey.findMany({ orderBy: { createdAt: 'desc' } });
    const live = new Set(
      (await this.prisma.edgeExport.findMany({ where: { expiresAt: { gt: now } }, select: { kid: true }, distinct: ['kid'] })).map(
        (row) => row.kid,
      ),
    );
    return { keys: keys.filter((key) => key.retiredAt === null || live.has(key.kid)).map((key) => key.publicJwk as unknown as EdgeKeyJwk) };
  }

  /** Retires the signing key and makes the next (admins, through the api). */
  async rotate(): Promise<EdgeKeysView> {
    await this.prisma.edgeSigningKey.updateMany({ where: { retiredAt: null }, data: { retiredAt: new Date() } });
    await this.create();
    return this.published();
  }

  private async signingKey(): Promise<{ kid: string; privateKey: string }> {
    const current = await this.prisma.edgeSigningKey.findFirst({ where: { retiredAt: null }, orderBy: { createdAt: 'desc' } });
    return current ?? this.create();
  }

  private async create(): Promise<{ kid: string; privateKey: string }> {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const kid = newId('ek');
    const jwk = publicKey.export({ format: 'jwk' });
    const publicJwk: EdgeKeyJwk = { kty: 'OKP', crv: 'Ed25519', x: String(jwk.x), kid, use: 'sig', alg: 'EdDSA' };
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    await this.prisma.edgeSigningKey.create({ data: { kid, publicJwk: publicJwk as unknown as Prisma.InputJsonObject, privateKey: pem } });
    return { kid, privateKey: pem };
  }
}
