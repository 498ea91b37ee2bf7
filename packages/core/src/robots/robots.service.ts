import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import type { BodyModelSummary, CreateRobotRequest, ListQuery, Page, RobotView } from '@kura/schema';
import { requireRole, ownsOrAdmin, type Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { deleteBlobJobId } from '../blobs/delete-blob.job.js';
import { newId } from '../common/ids.js';
import { decodeCursor, toPage } from '../common/pagination.js';
import { JobsService } from '../jobs/jobs.service.js';
import { bodyModelEmpty, bodyModelMissing, bodyModelNotUtf8, bodyModelUnusable, robotNotFound, robotNotOwned } from './robots.errors.js';
import { RobotsRepository, type RobotRecord } from './robots.repository.js';
import { parseUrdf, UrdfError } from './urdf.js';

@Injectable()
export class RobotsService {
  constructor(
    private readonly robots: RobotsRepository,
    private readonly jobs: JobsService,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
  ) {}

  async create(principal: Principal, request: CreateRobotRequest): Promise<RobotView> {
    requireRole(principal, ['operator'], 'register robots');
    const robot = await this.robots.create({
      id: newId('rbt'),
      name: request.name,
      robotType: request.robotType,
      controlFrequencyHz: request.controlFrequencyHz,
      actionSpace: request.actionSpace,
      stateSpace: request.stateSpace ?? null,
      jointNames: request.jointNames ?? [],
      cameras: request.cameras ?? [],
      ownerKeyId: principal.keyId,
    });
    return toView(robot);
  }

  /**
   * Robots are visible to every key: an embodiment is what makes a dataset readable. Without a key,
   * only robots of public (or sample) datasets are.
   */
  async list(principal: Principal, query: ListQuery): Promise<Page<RobotView>> {
    const rows = await this.robots.list({
      afterId: decodeCursor(query.cursor, 'rbt'),
      take: query.limit + 1,
      publicOnly: principal.kind === 'anonymous',
    });
    return toPage(rows, query.limit, toView);
  }

  async get(principal: Principal, id: string): Promise<RobotView> {
    return toView(await this.findVisible(principal, id));
  }

  /**
   * Parses a URDF, keeps the original file in the blob store and records its joints and links.
   * A replaced body model's file is deleted by a background job.
   */
  async putBodyModel(principal: Principal, id: string, file: Buffer): Promise<BodyModelSummary> {
    requireRole(principal, ['operator'], 'set body models');
    const robot = await this.robots.findById(id);
    if (!robot) throw robotNotFound(id);
    if (!ownsOrAdmin(principal, robot.ownerKeyId)) throw robotNotOwned(id);
    if (file.length === 0) throw bodyModelEmpty();
    const summary = parseBodyModel(file);
    const key = `robots/${id}/body-model/${createHash('sha256').update(file).digest('hex')}.urdf`;
    await this.blobs.put({ key, body: file, contentType: 'application/xml' });
    const { previousKey } = await this.robots.setBodyModel(id, key, summary);
    if (previousKey && previousKey !== key)
      await this.jobs.enqueue('blobs.delete', { key: previousKey }, { id: deleteBlobJobId(previousKey) });
    return summary;
  }

  /** The original body model file. */
  async getBodyModelFile(principal: Principal, id: string): Promise<{ body: Readable; bytes: number }> {
    const robot = await this.findVisible(principal, id);
    if (!robot.bodyModelKey) throw bodyModelMissing(id);
    const info = await this.blobs.head({ key: robot.bodyModelKey });
    if (!info) throw bodyModelMissing(id);
    return { body: await this.blobs.get({ key: robot.bodyModelKey }), bytes: info.bytes };
  }

  /** The robot, or ROBOT_NOT_FOUND when it does not exist or the caller may not see it. */
  async findVisible(principal: Principal, id: string): Promise<RobotRecord> {
    const robot = await this.robots.findById(id);
    if (!robot) throw robotNotFound(id);
    if (principal.kind === 'anonymous' && !(await this.robots.isUsedByPublicDataset(id))) throw robotNotFound(id);
    return robot;
  }
}

function parseBodyModel(file: Buffer): BodyModelSummary {
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  let xml: string;
  try {
    xml = text.decode(file);
  } catch {
    throw bodyModelNotUtf8();
  }
  try {
    return parseUrdf(xml);
  } catch (error) {
    if (error instanceof UrdfError) {
      throw bodyModelUnusable(error);
    }
    throw error;
  }
}

function toView(robot: RobotRecord): RobotView {
  return {
    id: robot.id,
    name: robot.name,
    robotType: robot.robotType,
    controlFrequencyHz: robot.controlFrequencyHz,
    actionSpace: robot.actionSpace,
    stateSpace: robot.stateSpace,
    jointNames: robot.jointNames,
    cameras: robot.cameras,
    ownerKeyId: robot.ownerKeyId,
    bodyModel: robot.bodyModel,
    createdAt: robot.createdAt.toISOString(),
    updatedAt: robot.updatedAt.toISOString(),
  };
}
