import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { CoreModule } from '@kura/core';
import { DatasetsController } from './datasets/datasets.controller.js';
import { StatsController } from './datasets/stats.controller.js';
import { VersionsController } from './datasets/versions.controller.js';
import { EpisodesController } from './episodes/episodes.controller.js';
import { HealthController } from './health/health.controller.js';
import { MetricsService } from './health/metrics.service.js';
import { AuthGuard } from './http/auth.guard.js';
import { StorableTextGuard } from './http/storable-text.guard.js';
import { KeysController } from './keys/keys.controller.js';
import { RobotsController } from './robots/robots.controller.js';
import { UploadsController } from './uploads/uploads.controller.js';
import { SlicesController } from './slices/slices.controller.js';
import { PoliciesController } from './policies/policies.controller.js';
import { InferenceController } from './inference/inference.controller.js';
import { SessionsController } from './inference/sessions.controller.js';
import { TrainersController } from './training/trainers.controller.js';
import { TrainingsController } from './training/trainings.controller.js';
import { UsageController } from './usage/usage.controller.js';
import { LedgerController } from './ledger/ledger.controller.js';
import { EdgeController } from './edge/edge.controller.js';

@Module({})
export class AppModule {
  static forRoot(params: Parameters<typeof CoreModule.forRoot>[0]): DynamicModule {
    return {
      module: AppModule,
      imports: [CoreModule.forRoot(params)],
      controllers: [
        HealthController,
        KeysController,
        RobotsController,
        DatasetsController,
        UploadsController,
        VersionsController,
        EpisodesController,
        StatsController,
        SlicesController,
        PoliciesController,
        TrainersController,
        TrainingsController,
        InferenceController,
        SessionsController,
        LedgerController,
        EdgeController,
        UsageController,
      ],
      // Text first: a request Postgres could not store is refused before the key is looked up.
      providers: [MetricsService, { provide: APP_GUARD, useClass: StorableTextGuard }, { provide: APP_GUARD, useClass: AuthGuard }],
    };
  }
}
