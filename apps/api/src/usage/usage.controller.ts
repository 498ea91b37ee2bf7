import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { UsageService, type Principal } from '@kura/core';
import { usageQuerySchema, type UsageQuery } from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentQuery, Query } from '../http/zod.js';

@ApiTags('inference')
@ApiBearerAuth()
@Controller('v1/usage')
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  /** Act calls, session steps, inference milliseconds and slice bytes served, per key (the last 30 days by default). */
  @Get()
  @documentQuery(usageQuerySchema)
  get(@CurrentPrincipal() principal: Principal, @Query(usageQuerySchema) query: UsageQuery) {
    return this.usage.usage(principal, query);
  }
}
