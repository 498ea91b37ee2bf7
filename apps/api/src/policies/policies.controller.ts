import { Controller, Get, HttpCode, Param, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { EvaluationsService, PoliciesService, bundleNotOctetStream, type Principal } from '@kura/core';
import {
  evaluationRequestSchema,
  listQuerySchema,
  policyListQuerySchema,
  policyUploadQuerySchema,
  type EvaluationRequest,
  type ListQuery,
  type PolicyListQuery,
  type PolicyUploadQuery,
} from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, documentQuery, JsonBody, Query } from '../http/zod.js';

@ApiTags('policies')
@ApiBearerAuth()
@Controller('v1')
export class PoliciesController {
  constructor(
    private readonly policies: PoliciesService,
    private readonly evaluations: EvaluationsService,
  ) {}

  /** Stores a policy bundle (.tar.gz or .zip with policy.json); 202 `validating`, then `ready` or `rejected`. */
  @Post('policies')
  @HttpCode(202)
  @ApiConsumes('application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @documentQuery(policyUploadQuerySchema)
  upload(@CurrentPrincipal() principal: Principal, @Query(policyUploadQuerySchema) query: PolicyUploadQuery, @Req() request: Request) {
    // A JSON body was already consumed by the JSON parser: the bundle must come as bytes.
    if (request.body !== undefined) throw bundleNotOctetStream();
    return this.policies.upload(principal, { body: request, access: query.access });
  }

  @Get('policies')
  @documentQuery(policyListQuerySchema)
  list(@CurrentPrincipal() principal: Principal, @Query(policyListQuerySchema) query: PolicyListQuery) {
    return this.policies.list(principal, query);
  }

  @Get('policies/:id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.policies.get(principal, id);
  }

  /** Runs the policy over the held-out episodes of a dataset version (the latest when none is named). */
  @Post('policies/:id/evaluations')
  @HttpCode(202)
  @documentBody(evaluationRequestSchema)
  evaluate(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @JsonBody(evaluationRequestSchema) request: EvaluationRequest,
  ) {
    return this.evaluations.create(principal, id, request);
  }

  /** The policy's evaluations, oldest first (those on datasets the caller may not see are left out). */
  @Get('policies/:id/evaluations')
  @documentQuery(listQuerySchema)
  listEvaluations(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Query(listQuerySchema) query: ListQuery) {
    return this.evaluations.listForPolicy(principal, id, query);
  }

  @Get('evaluations/:id')
  evaluation(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.evaluations.get(principal, id);
  }

  /** Ready policies by their latest evaluation's actionMse on the dataset, best first. */
  @Get('datasets/:id/leaderboard')
  leaderboard(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.evaluations.leaderboard(principal, id);
  }
}
