import { Controller, Get, Param, Post, Put, Req, Res, StreamableFile } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { KURA_CONFIG, RobotsService, bodyModelNotXml, type KuraConfig, type Principal } from '@kura/core';
import { createRobotRequestSchema, listQuerySchema, type CreateRobotRequest, type ListQuery } from '@kura/schema';
import { Inject } from '@nestjs/common';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { readRawBody } from '../http/raw-body.js';
import { documentBody, documentQuery, JsonBody, Query } from '../http/zod.js';

@ApiTags('robots')
@ApiBearerAuth()
@Controller('v1/robots')
export class RobotsController {
  constructor(
    private readonly robots: RobotsService,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
  ) {}

  @Post()
  @documentBody(createRobotRequestSchema)
  create(@CurrentPrincipal() principal: Principal, @JsonBody(createRobotRequestSchema) request: CreateRobotRequest) {
    return this.robots.create(principal, request);
  }

  @Get()
  @documentQuery(listQuerySchema)
  list(@CurrentPrincipal() principal: Principal, @Query(listQuerySchema) query: ListQuery) {
    return this.robots.list(principal, query);
  }

  @Get(':id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.robots.get(principal, id);
  }

  /** Takes a URDF file as the raw body; replies with its joints and links. */
  @Put(':id/body-model')
  @ApiConsumes('application/xml', 'text/xml', 'application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  async putBodyModel(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Req() request: Request) {
    if (request.is(['application/json', 'multipart/form-data', 'application/x-www-form-urlencoded'])) {
      throw bodyModelNotXml();
    }
    const file = await readRawBody(request, { limit: this.config.http.bodyModelLimit, what: 'body model' });
    return this.robots.putBodyModel(principal, id, file);
  }

  /** The original body model file. */
  @Get(':id/body-model')
  async getBodyModel(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Res({ passthrough: true }) response: Response) {
    const file = await this.robots.getBodyModelFile(principal, id);
    response.setHeader('Content-Type', 'application/xml');
    return new StreamableFile(file.body, { length: file.bytes });
  }
}
