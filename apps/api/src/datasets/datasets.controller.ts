import { Controller, Get, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { DatasetsService, type Principal } from '@kura/core';
import { createDatasetRequestSchema, listQuerySchema, type CreateDatasetRequest } from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, documentQuery, JsonBody, Query } from '../http/zod.js';

const datasetListQuerySchema = listQuerySchema.extend({ robotId: z.string().min(1).max(100).optional() });
type DatasetListQuery = z.infer<typeof datasetListQuerySchema>;

@ApiTags('datasets')
@ApiBearerAuth()
@Controller('v1/datasets')
export class DatasetsController {
  constructor(private readonly datasets: DatasetsService) {}

  @Post()
  @documentBody(createDatasetRequestSchema)
  create(@CurrentPrincipal() principal: Principal, @JsonBody(createDatasetRequestSchema) request: CreateDatasetRequest) {
    return this.datasets.create(principal, request);
  }

  /** Datasets the caller may see; without a key, the public and sample ones. */
  @Get()
  @documentQuery(datasetListQuerySchema)
  list(@CurrentPrincipal() principal: Principal, @Query(datasetListQuerySchema) query: DatasetListQuery) {
    return this.datasets.list(principal, query);
  }

  @Get(':id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.datasets.get(principal, id);
  }
}
