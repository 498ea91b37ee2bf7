import { Module, type DynamicModule, type OnApplicationShutdown, Inject, type Provider } from '@nestjs/common';
import { KeysRepository } from './auth/keys.repository.js';
import { KeysService } from './auth/keys.service.js';
import { BLOB_STORE, type BlobStore } from './blobs/blob-store.js';
import { DeleteBlobJob } from './blobs/delete-blob.job.js';
import { IngestUploadJob } from './ingest/ingest-upload.job.js';
import { IngestService } from './ingest/ingest.service.js';
import { PolicyHosts } from './policies/hosts/policy-hosts.service.js';
import { UploadsRepository } from './uploads/uploads.repository.js';
import { UploadsService } from './uploads/uploads.service.js';
import { EpisodesRepository } from './episodes/episodes.repository.js';
import { EpisodesService } from './episodes/episodes.service.js';
import { VersionsRepository } from './datasets/versions.repository.js';
import { VersionsService } from './datasets/versions.service.js';
import { FilesystemBlobStore } from './blobs/filesystem-blob-store.js';
import { S3BlobStore } from './blobs/s3-blob-store.js';
import type { KuraConfig } from './config/config.js';
import { DATABASE_URL, JAIL_LEVEL, KURA_CONFIG, LOGGER, QUOTA_COUNTERS } from './database/database.tokens.js';
import { chooseJailLevel } from '@kura/jail';
import { createPrismaClient, PrismaClient } from './database/prisma.js';
import { DatasetsRepository } from './datasets/datasets.repository.js';
import { DatasetReachService } from './datasets/dataset-reach.service.js';
import { DatasetsService } from './datasets/datasets.service.js';
import { HealthService } from './health/health.service.js';
import { BullmqJobQueue } from './jobs/bullmq-job-queue.js';
import { InProcessJobQueue } from './jobs/in-process-job-queue.js';
import { JOB_HANDLERS } from './jobs/job-handler.js';
import { JOB_QUEUE, type JobQueue } from './jobs/job-queue.js';
import { JobRepository } from './jobs/job.repository.js';
import { JobsService } from './jobs/jobs.service.js';
import type { Logger } from './logging/logger.js';
import { RobotsRepository } from './robots/robots.repository.js';
import { RobotsService } from './robots/robots.service.js';
import { GrantsRepository } from './datasets/grants.repository.js';
import { ShardReader } from './slices/shard-reader.js';
import { SliceReader } from './slices/slice-reader.js';
import { SlicesRepository } from './slices/slices.repository.js';
import { SlicesService } from './slices/slices.service.js';
import { SliceDownloadService } from './slices/slice-download.service.js';
import { PoliciesRepository } from './policies/policies.repository.js';
import { PoliciesService } from './policies/policies.service.js';
import { PolicyValidationService } from './policies/policy-validation.service.js';
import { ValidatePolicyJob } from './policies/validate-policy.job.js';
import { EvaluationsRepository } from './policies/evaluations.repository.js';
import { EvaluationsService } from './policies/evaluations.service.js';
import { PolicyEvaluationService } from './policies/policy-evaluation.service.js';
import { EvaluatePolicyJob } from './policies/evaluate-policy.job.js';
import { PolicyLoader } from './policies/policy-loader.service.js';
import { PolicyPool } from './inference/policy-pool.js';
import { InferenceService } from './inference/inference.service.js';
import { SessionsRepository } from './inference/sessions.repository.js';
import { SessionsService } from './inference/sessions.service.js';
import { SessionStepWriter } from './inference/session-step-writer.js';
import { UsageMeter } from './usage/usage.meter.js';
import { UsageService } from './usage/usage.service.js';
import { KeyCache } from './auth/key-cache.js';
import { QuotaService } from './usage/quota.service.js';
import { MemoryQuotaCounters, RedisQuotaCounters, type QuotaCounters } from './usage/quota-counters.js';

/** Every job handler; adding a job is one line here plus its payload schema in @kura/schema. */
const jobHandlerClasses = [DeleteBlobJob, IngestUploadJob, ValidatePolicyJob, EvaluatePolicyJob];

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
  static forRoot(params: { config: KuraConfig; logger: Logger; databaseUrl: string }): DynamicModule {
    const providers: Provider[] = [
      { provide: KURA_CONFIG, useValue: params.config },
      { provide: LOGGER, useValue: params.logger },
      { provide: DATABASE_URL, useValue: params.databaseUrl },
      { provide: PrismaClient, useFactory: () => createPrismaClient(params.databaseUrl) },
      PrismaLifecycle,
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
      JobRepository,
      JobsService,
      KeysRepository,
      KeyCache,
      KeysService,
      RobotsRepository,
      RobotsService,
      DatasetsRepository,
      DatasetReachService,
      GrantsRepository,
      ShardReader,
      SliceReader,
      SlicesRepository,
      SlicesService,
      SliceDownloadService,
      PoliciesRepository,
      PoliciesService,
      PolicyValidationService,
      EvaluationsRepository,
      EvaluationsService,
      PolicyEvaluationService,
      PolicyLoader,
      PolicyPool,
      InferenceService,
      SessionsRepository,
      SessionStepWriter,
      SessionsService,
      UsageMeter,
      UsageService,
      QuotaService,
      DatasetsService,
      UploadsRepository,
      UploadsService,
      IngestService,
      PolicyHosts,
      EpisodesRepository,
      EpisodesService,
      VersionsRepository,
      VersionsService,
      HealthService,
    ];
    return {
      module: CoreModule,
      global: true,
      providers,
      exports: [
        KURA_CONFIG,
        LOGGER,
        DATABASE_URL,
        PrismaClient,
        BLOB_STORE,
        JOB_QUEUE,
        JobsService,
        KeysService,
        RobotsService,
        DatasetsService,
        UploadsService,
        VersionsService,
        EpisodesService,
        SlicesService,
        SliceDownloadService,
        PoliciesService,
        EvaluationsService,
        InferenceService,
        SessionsService,
        UsageService,
        QuotaService,
        HealthService,
      ],
    };
  }
}
