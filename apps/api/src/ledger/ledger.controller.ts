import { Controller, Get, Param, Put } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { LedgerService, type Principal } from '@kura/core';
import { datasetTermsRequestSchema, ledgerQuerySchema, type DatasetTermsRequest, type LedgerQuery } from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, documentQuery, JsonBody, Query } from '../http/zod.js';

/** Dataset terms and the ledger that pays data back (docs/ledger.md). */
@ApiTags('ledger')
@ApiBearerAuth()
@Controller('v1')
export class LedgerController {
  constructor(private readonly ledger: LedgerService) {}

  /** Sets a dataset's terms (owner or admin): edge export, fee per 1,000 policy calls, text; pricing calls from the minute they are set in. */
  @Put('datasets/:id/terms')
  @documentBody(datasetTermsRequestSchema)
  setTerms(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @JsonBody(datasetTermsRequestSchema) request: DatasetTermsRequest,
  ) {
    return this.ledger.setTerms(principal, id, request);
  }

  /** A dataset's terms now and before (anyone who may see the dataset). */
  @Get('datasets/:id/terms')
  terms(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.ledger.termsOf(principal, id);
  }

  /** What the calls of policies trained on the dataset earned it over a range (owner or admin). */
  @Get('datasets/:id/earnings')
  @documentQuery(ledgerQuerySchema)
  earnings(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Query(ledgerQuerySchema) query: LedgerQuery) {
    return this.ledger.earnings(principal, id, query);
  }

  /** Every dataset's earnings over a range (admins). */
  @Get('ledger')
  @documentQuery(ledgerQuerySchema)
  ledgerOf(@CurrentPrincipal() principal: Principal, @Query(ledgerQuerySchema) query: LedgerQuery) {
    return this.ledger.ledgerOf(principal, query);
  }
}
