import { Controller, Get, HttpCode, Param, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { TrainingsService, trainingLogsNotReady, type Principal } from '@kura/core';
import { createTrainingRequestSchema, listQuerySchema, type CreateTrainingRequest, type ListQuery } from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, documentQuery, JsonBody, Query } from '../http/zod.js';

@ApiTags('training')
@ApiBearerAuth()
@Controller('v1/trainings')
export class TrainingsController {
  constructor(private readonly trainings: TrainingsService) {}

  /** Queues a run of a ready trainer on pinned dataset versions; 202 `queued`. */
  @Post()
  @HttpCode(202)
  @documentBody(createTrainingRequestSchema)
  create(@CurrentPrincipal() principal: Principal, @JsonBody(createTrainingRequestSchema) body: CreateTrainingRequest) {
    return this.trainings.create(principal, body);
  }

  @Get()
  @documentQuery(listQuerySchema)
  list(@CurrentPrincipal() principal: Principal, @Query(listQuerySchema) query: ListQuery) {
    return this.trainings.list(principal, query);
  }

  @Get(':id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.trainings.get(principal, id);
  }

  /** Stops a run: a queued one at once, a running one's process group within about a second. */
  @Post(':id/cancel')
  @HttpCode(202)
  cancel(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.trainings.cancel(principal, id);
  }

  /** The metric series the trainer printed (JSON lines of numbers), live while it runs. */
  @Get(':id/metrics')
  metrics(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.trainings.metrics(principal, id);
  }

  /** The run's log once it has ended: whole (capped), or guarded when it used data beyond its owner's access. */
  @Get(':id/logs')
  @ApiProduces('text/plain')
  async logs(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Res() response: Response): Promise<void> {
    const { training, text } = await this.trainings.log(principal, id);
    if (text === undefined) throw trainingLogsNotReady(id, training.status);
    response
      .status(200)
      .setHeader('Content-Type', 'text/plain; charset=utf-8')
      .setHeader('X-Kura-Log-Guarded', training.beyondAccessEpisodes > 0 ? 'true' : 'false')
      .send(text);
  }
}
