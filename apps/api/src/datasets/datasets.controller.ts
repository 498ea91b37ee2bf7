import { Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { DatasetsService, type Principal } from '@kura/core';
import {
  createDatasetRequestSchema,
  datasetListQuerySchema,
  grantRequestSchema,
  listQuerySchema,
  type CreateDatasetRequest,
  type DatasetListQuery,
  type GrantRequest,
  type ListQuery,
} from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, documentQuery, JsonBody, Query } from '../http/zod.js';

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

  /** Gives a key full access to a `sample` or `private` dataset (owner or admin). */
  @Post(':id/grants')
  @documentBody(grantRequestSchema)
  grant(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @JsonBody(grantRequestSchema) request: GrantRequest) {
    return this.datasets.grant(principal, id, request.keyId);
  }

  @Get(':id/grants')
  @documentQuery(listQuerySchema)
  listGrants(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Query(listQuerySchema) query: ListQuery) {
    return this.datasets.listGrants(principal, id, query);
  }

  @Delete(':id/grants/:keyId')
  @HttpCode(204)
  async revokeGrant(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Param('keyId') keyId: string): Promise<void> {
    await this.datasets.revokeGrant(principal, id, keyId);
  }
}
