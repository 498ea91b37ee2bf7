import { Controller, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { InferenceService, type Principal } from '@kura/core';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, JsonBody } from '../http/zod.js';

const actRequestSchema = z.strictObject({
  /** Feature → numbers (nested arrays allowed) or the base64 of an encoded image. */
  observation: z.record(z.string().min(1).max(200), z.unknown()),
  task: z.string().max(10_000).optional(),
});

@ApiTags('inference')
@ApiBearerAuth()
@Controller('v1')
export class InferenceController {
  constructor(private readonly inference: InferenceService) {}

  /** One action (or action chunk) from a ready policy, from a warm sandboxed instance. */
  @Post('policies/:id/act')
  @HttpCode(200)
  @documentBody(actRequestSchema)
  act(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @JsonBody(actRequestSchema) request: z.infer<typeof actRequestSchema>,
  ) {
    return this.inference.act(principal, id, request);
  }
}
