import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { SessionsService, type Principal } from '@kura/core';
import {
  createSessionRequestSchema,
  endSessionRequestSchema,
  sessionStepRequestSchema,
  type CreateSessionRequest,
  type EndSessionRequest,
  type SessionStepRequest,
} from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, JsonBody } from '../http/zod.js';

@ApiTags('inference')
@ApiBearerAuth()
@Controller('v1/sessions')
export class SessionsController {
  constructor(private readonly sessions: SessionsService) {}

  /** A session of a ready policy whose steps become an episode of the dataset. */
  @Post()
  @documentBody(createSessionRequestSchema)
  create(@CurrentPrincipal() principal: Principal, @JsonBody(createSessionRequestSchema) request: CreateSessionRequest) {
    return this.sessions.create(principal, request);
  }

  @Get(':id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.sessions.get(principal, id);
  }

  /** Runs the policy; the step is recorded durably before this replies. */
  @Post(':id/steps')
  @HttpCode(200)
  @documentBody(sessionStepRequestSchema)
  step(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @JsonBody(sessionStepRequestSchema) request: SessionStepRequest) {
    return this.sessions.step(principal, id, request);
  }

  /** Ends the session; it becomes an upload of its dataset (the same upload on a repeat). */
  @Post(':id/end')
  @HttpCode(200)
  @documentBody(endSessionRequestSchema)
  end(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @JsonBody(endSessionRequestSchema) request: EndSessionRequest) {
    return this.sessions.end(principal, id, request);
  }
}
