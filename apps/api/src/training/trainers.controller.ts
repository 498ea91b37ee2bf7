import { Controller, Get, HttpCode, Param, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { TrainersService, bundleNotOctetStream, type Principal } from '@kura/core';
import { listQuerySchema, type ListQuery } from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentQuery, Query } from '../http/zod.js';

@ApiTags('training')
@ApiBearerAuth()
@Controller('v1/trainers')
export class TrainersController {
  constructor(private readonly trainers: TrainersService) {}

  /** Stores a trainer bundle (.tar.gz or .zip with trainer.json); 202 `validating`, then `ready` or `rejected`. */
  @Post()
  @HttpCode(202)
  @ApiConsumes('application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  upload(@CurrentPrincipal() principal: Principal, @Req() request: Request) {
    // A JSON body was already consumed by the JSON parser: the bundle must come as bytes.
    if (request.body !== undefined) throw bundleNotOctetStream();
    return this.trainers.upload(principal, request);
  }

  @Get()
  @documentQuery(listQuerySchema)
  list(@CurrentPrincipal() principal: Principal, @Query(listQuerySchema) query: ListQuery) {
    return this.trainers.list(principal, query);
  }

  @Get(':id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.trainers.get(principal, id);
  }
}
