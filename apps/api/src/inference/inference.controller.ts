import { Controller, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { InferenceService, type Principal } from '@kura/core';
import { actRequestSchema, type ActRequest } from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, JsonBody } from '../http/zod.js';

@ApiTags('inference')
@ApiBearerAuth()
@Controller('v1')
export class InferenceController {
  constructor(private readonly inference: InferenceService) {}

  /** One action (or action chunk) from a ready policy, from a warm sandboxed instance. */
  @Post('policies/:id/act')
  @HttpCode(200)
  @documentBody(actRequestSchema)
  act(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @JsonBody(actRequestSchema) request: ActRequest) {
    return this.inference.act(principal, id, request);
  }
}
