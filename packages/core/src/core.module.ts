import { Module, type DynamicModule, type OnApplicationShutdown, Inject, type Provider } from '@nestjs/common';
import { chooseJailLevel } from '@kura/jail';
import { authDomain } from './auth/index.js';
import { BLOB_STORE, type BlobStore } from './blobs/blob-store.js';
import { FilesystemBlobStore } from './blobs/filesystem-blob-store.js';
import { blobsDomain } from './blobs/index.js';
import { S3BlobStore } from './blobs/s3-blob-store.js';
import type { DomainProviders } from './common/domain.js';
import type { KuraConfig } from './config/config.js';
import { DATABASE_OUTAGE, DATABASE_URL, JAIL_LEVEL, KURA_CONFIG, LOGGER, QUOTA_COUNTERS } from './database/database.tokens.js';
import { PostgresCopy } from './database/postgres-copy.js';
import { createPrismaClient, PrismaClient } from './database/prisma.js';
import { datasetsDomain } from './datasets/index.js';
import { healthDomain } from './health/index.js';
import { inferenceDomain } from './inference/index.js';
import { BullmqJobQueue } from './jobs/bullmq-job-queue.js';
import { InProcessJobQueue } from './jobs/in-process-job-queue.js';
import { edgeDomain } from './edge/index.js';
import { jobsDomain } from './jobs/index.js';
import { ledgerDomain } from './ledger/index.js';
import { JOB_HANDLERS } from './jobs/job-handler.js';
import { JOB_QUEUE, type JobQueue } from './jobs/job-queue.js';
import type { Logger } from './logging/logger.js';
import { policiesDomain } from './policies/index.js';
import { robotsDomain } from './robots/index.js';
import { slicesDomain } from './slices/index.js';
import { trainingDomain } from './training/index.js';
import { uploadsDomain } from './uploads/index.js';
import { usageDomain } from './usage/index.js';
import { MemoryQuotaCounters, RedisQuotaCounters, type QuotaCounters } from './usage/quota-counters.js';

/**
 * Kura's domains, lowest first (a domain imports only those above it in this list; lint checks it).
 * A new domain is a folder with an index.ts exporting its DomainProviders, and one line here.
 */
const domains: DomainProviders[] = [
  jobsDomain,
  authDomain,
  blobsDomain,
  usageDomain,
  robotsDomain,
  datasetsDomain,
  slicesDomain,
  uploadsDomain,
  policiesDomain,
  trainingDomain,
  ledgerDomain,
  inferenceDomain,
  edgeDomain,
  healthDomain,
];
const jobHandlerClasses = domains.flatMap((domain) => domain.jobHandlers ?? []);

export function createBlobStore(config: KuraConfig['blobs']): BlobStore {
  return config.kind === 's3' ? new S3BlobStore(config) : new FilesystemBlobStore({ directory: config.directory });
}

export function createJobQueue(config: KuraConfig, logger: Logger): JobQueue {
  return config.queue.kind === 'bullmq'
    ? new BullmqJobQueue({
        redisUrl: config.queue.redisUrl,
        queueName: config.queue.name,
        backoffMs: config.jobs.backoffMs,
        lockMs: config.jobs.lockMs,
        onError: (error) => logger.warn({ err: error }, 'job queue connection error'),
      })
    : new InProcessJobQueue({ backoffMs: config.jobs.backoffMs });
}

/** Quota counters must be shared when api processes are several, which is when Redis is configured. */
export function createQuotaCounters(config: KuraConfig): QuotaCounters {
  return config.queue.kind === 'bullmq'
    ? new RedisQuotaCounters({ redisUrl: config.queue.redisUrl, prefix: config.queue.name })
    : new MemoryQuotaCounters();
}

class PrismaLifecycle implements OnApplicationShutdown {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}
  async onApplicationShutdown(): Promise<void> {
    await this.prisma.$disconnect();
  }
}

/**
 * Kura's domains and infrastructure as one Nest module. The process that imports it (api or
 * worker) passes the validated config, its logger and the database URL (embedded or external).
 */
@Module({})
export class CoreModule {
  static forRoot(params: {
    config: KuraConfig;
    logger: Logger;
    databaseUrl: string;
    /** The embedded Postgres's outage, when this process supervises one. */
    databaseOutage?: (() => string | undefined) | undefined;
  }): DynamicModule {
    const providers: Provider[] = [
      { provide: KURA_CONFIG, useValue: params.config },
      { provide: LOGGER, useValue: params.logger },
      { provide: DATABASE_URL, useValue: params.databaseUrl },
      { provide: DATABASE_OUTAGE, useValue: params.databaseOutage ?? (() => undefined) },
      { provide: PrismaClient, useFactory: () => createPrismaClient(params.databaseUrl) },
      PrismaLifecycle,
      PostgresCopy,
      { provide: BLOB_STORE, useFactory: () => createBlobStore(params.config.blobs) },
      { provide: JOB_QUEUE, useFactory: () => createJobQueue(params.config, params.logger) },
      { provide: QUOTA_COUNTERS, useFactory: () => createQuotaCounters(params.config) },
      {
        provide: JAIL_LEVEL,
        useFactory: () => {
          const choice = chooseJailLevel(params.config.sandbox.setting);
          params.logger.info({ sandbox: choice.level, reason: choice.reason }, `untrusted work runs at sandbox level ${choice.level}`);
          if (choice.level === 'unsafe-none')
            params.logger.warn(
              "KURA_SANDBOX=unsafe-none: developers' code runs without namespaces — for development only, never in front of strangers",
            );
          if (choice.level === 'process')
            params.logger.warn("developers' code (policies) is refused here (SANDBOX_UNAVAILABLE): it runs only in the bubblewrap jail");
          return choice;
        },
      },
      ...jobHandlerClasses,
      { provide: JOB_HANDLERS, useFactory: (...handlers: unknown[]) => handlers, inject: jobHandlerClasses },
      ...domains.flatMap((domain) => domain.providers),
    ];
    return {
      module: CoreModule,
      global: true,
      providers,
      exports: [KURA_CONFIG, LOGGER, DATABASE_URL, PrismaClient, BLOB_STORE, JOB_QUEUE, ...domains.flatMap((domain) => domain.exports)],
    };
  }
}
