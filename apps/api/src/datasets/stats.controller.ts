import { Controller, Get, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { DatasetStatsService, type Principal } from '@kura/core';
import { datasetStatsQuerySchema, type DatasetStatsQuery } from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentQuery, Query } from '../http/zod.js';

@ApiTags('datasets')
@ApiBearerAuth()
@Controller('v1/datasets')
export class StatsController {
  constructor(private readonly stats: DatasetStatsService) {}

  @Get(':id/stats')
  @documentQuery(datasetStatsQuerySchema)
  get(@CurrentPrincipal() principal: Principal, @Param('id') datasetId: string, @Query(datasetStatsQuerySchema) query: DatasetStatsQuery) {
    return this.stats.stats(principal, datasetId, query.version);
  }
}
