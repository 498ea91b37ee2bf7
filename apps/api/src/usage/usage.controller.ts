import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { UsageService, type Principal } from '@kura/core';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentQuery, Query } from '../http/zod.js';

const usageQuerySchema = z.strictObject({
  from: z.coerce.date().optional(),
  to: z.coerce.date().optional(),
  keyId: z.string().min(1).max(100).optional(),
});

@ApiTags('inference')
@ApiBearerAuth()
@Controller('v1/usage')
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  /** Act calls, session steps, inference milliseconds and slice bytes served, per key (the last 30 days by default). */
  @Get()
  @documentQuery(usageQuerySchema)
  get(@CurrentPrincipal() principal: Principal, @Query(usageQuerySchema) query: z.infer<typeof usageQuerySchema>) {
    return this.usage.usage(principal, query);
  }
}
