import type { Readable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import type { ListQuery, Page, TrainerView } from '@kura/schema';
import { isAdmin, ownsOrAdmin, requireRole, type Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { bodyInterrupted, storeBody } from '../blobs/store-body.js';
import { newId } from '../common/ids.js';
import { decodeCursor, toPage } from '../common/pagination.js';
import type { KuraConfig } from '../config/config.js';
import { KURA_CONFIG } from '../database/database.tokens.js';
import { JobsService } from '../jobs/jobs.service.js';
import { PolicyHosts } from '../policies/hosts/policy-hosts.service.js';
import { trainerBundleEmpty, trainerBundleTooLarge, trainerNotFound } from './training.errors.js';
import { TrainersRepository, type TrainerRecord } from './trainers.repository.js';

export const validateTrainerJobId = (trainerId: string) => `trainers.validate:${trainerId}`;

/** Trainer bundles: upload (stored, then validated by a job), lookup and listing by their owner. */
@Injectable()
export class TrainersService {
  constructor(
    private readonly trainers: TrainersRepository,
    private readonly jobs: JobsService,
    private readonly hosts: PolicyHosts,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
  ) {}

  async upload(principal: Principal, body: Readable): Promise<TrainerView> {
    requireRole(principal, ['developer'], 'upload trainers');
    this.hosts.assertAvailable();
    const id = newId('tnr');
    const bundleKey = `trainers/${id}/bundle`;
    const maxBytes = this.config.training.maxBundleBytes;
    const { bytes, sha256 } = await storeBody({
      blobs: this.blobs,
      key: bundleKey,
      body,
      maxBytes,
      tooLarge: () => trainerBundleTooLarge(maxBytes),
      interrupted: (error) => bodyInterrupted('BUNDLE_UPLOAD_INTERRUPTED', error),
    });
    if (bytes === 0) {
      await this.blobs.delete({ key: bundleKey });
      throw trainerBundleEmpty();
    }
    const trainer = await this.trainers.create({ id, ownerKeyId: principal.keyId, bundleKey, bytes: BigInt(bytes), sha256 });
    await this.jobs.enqueue('trainers.validate', { trainerId: id }, { id: validateTrainerJobId(id) });
    return toTrainerView(trainer);
  }

  async get(principal: Principal, id: string): Promise<TrainerView> {
    return toTrainerView(await this.findOwned(principal, id));
  }

  async list(principal: Principal, query: ListQuery): Promise<Page<TrainerView>> {
    requireRole(principal, ['developer'], 'list trainers');
    const rows = await this.trainers.list({
      ownerKeyId: isAdmin(principal) ? undefined : principal.keyId,
      afterId: decodeCursor(query.cursor, 'tnr'),
      take: query.limit + 1,
    });
    return toPage(rows, query.limit, toTrainerView);
  }

  /** The trainer, or TRAINER_NOT_FOUND unless the caller owns it (or is an admin): trainers are code, kept private. */
  async findOwned(principal: Principal, id: string): Promise<TrainerRecord> {
    const trainer = await this.trainers.findById(id);
    if (!trainer || principal.kind !== 'key' || !ownsOrAdmin(principal, trainer.ownerKeyId)) throw trainerNotFound(id);
    return trainer;
  }
}

export function toTrainerView(trainer: TrainerRecord): TrainerView {
  return {
    id: trainer.id,
    name: trainer.name,
    status: trainer.status,
    manifest: trainer.manifest,
    errors: trainer.errors,
    bytes: Number(trainer.bytes),
    sha256: trainer.sha256,
    createdAt: trainer.createdAt.toISOString(),
  };
}
