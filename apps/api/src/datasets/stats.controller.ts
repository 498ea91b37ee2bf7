import { Controller, Get, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { DatasetStatsService, type Principal } from '@kura/core';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentQuery, Query } from '../http/zod.js';

const versionQuerySchema = z.strictObject({ version: z.coerce.number().int().positive().optional() });

@ApiTags('datasets')
@ApiBearerAuth()
@Controller('v1/datasets')
export class StatsController {
  constructor(private readonly stats: DatasetStatsService) {}

  @Get(':id/stats')
  @documentQuery(versionQuerySchema)
  get(
    @CurrentPrincipal() principal: Principal,
    @Param('id') datasetId: string,
    @Query(versionQuerySchema) query: z.infer<typeof versionQuerySchema>,
  ) {
    return this.stats.stats(principal, datasetId, query.version);
  }
}
