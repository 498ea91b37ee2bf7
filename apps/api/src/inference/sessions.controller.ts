import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { SessionsService, type Principal } from '@kura/core';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, JsonBody } from '../http/zod.js';

const createSessionSchema = z.strictObject({
  policyId: z.string().min(1).max(100),
  datasetId: z.string().min(1).max(100),
  task: z.string().min(1).max(10_000).optional(),
});
const stepSchema = z.strictObject({
  observation: z.record(z.string().min(1).max(200), z.unknown()),
  reward: z.number().finite().optional(),
});
const endSchema = z.strictObject({ success: z.boolean().optional() });

@ApiTags('inference')
@ApiBearerAuth()
@Controller('v1/sessions')
export class SessionsController {
  constructor(private readonly sessions: SessionsService) {}

  /** A session of a ready policy whose steps become an episode of the dataset. */
  @Post()
  @documentBody(createSessionSchema)
  create(@CurrentPrincipal() principal: Principal, @JsonBody(createSessionSchema) request: z.infer<typeof createSessionSchema>) {
    return this.sessions.create(principal, request);
  }

  @Get(':id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.sessions.get(principal, id);
  }

  /** Runs the policy; the step is recorded durably before this replies. */
  @Post(':id/steps')
  @HttpCode(200)
  @documentBody(stepSchema)
  step(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @JsonBody(stepSchema) request: z.infer<typeof stepSchema>) {
    return this.sessions.step(principal, id, request);
  }

  /** Ends the session; it becomes an upload of its dataset (the same upload on a repeat). */
  @Post(':id/end')
  @HttpCode(200)
  @documentBody(endSchema)
  end(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @JsonBody(endSchema) request: z.infer<typeof endSchema>) {
    return this.sessions.end(principal, id, request);
  }
}
