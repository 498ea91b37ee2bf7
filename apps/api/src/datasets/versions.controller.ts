import { Controller, Get, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { z } from 'zod';
import { VersionsService, type Principal } from '@kura/core';
import { listQuerySchema } from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentQuery, Query } from '../http/zod.js';

@ApiTags('datasets')
@ApiBearerAuth()
@Controller('v1/datasets')
export class VersionsController {
  constructor(private readonly versions: VersionsService) {}

  @Get(':id/versions')
  @documentQuery(listQuerySchema)
  list(
    @CurrentPrincipal() principal: Principal,
    @Param('id') datasetId: string,
    @Query(listQuerySchema) query: z.infer<typeof listQuerySchema>,
  ) {
    return this.versions.list(principal, datasetId, query);
  }
}
