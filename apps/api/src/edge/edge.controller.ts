import { Controller, Delete, Get, HttpCode, Param, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { EdgeExportsService, EdgeKeysService, requireRole, type Principal } from '@kura/core';
import {
  edgeExportRequestSchema,
  edgeRenewRequestSchema,
  edgeUsageReportSchema,
  type EdgeExportRequest,
  type EdgeRenewRequest,
  type EdgeUsageReport,
} from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, JsonBody } from '../http/zod.js';

/** Edge packages: policies exported to run on a robot's own computer under a signed license (docs/edge.md). */
@ApiTags('edge')
@ApiBearerAuth()
@Controller('v1')
export class EdgeController {
  constructor(
    private readonly exports: EdgeExportsService,
    private readonly keys: EdgeKeysService,
  ) {}

  /**
   * Exports a ready policy (its owner, or an admin) when every dataset of its lineage allows it: 201
   * with the package as a `.tar` (license.json, license.sig, policy.json, policy.tar.gz, and
   * normalization.json when the policy normalizes by a dataset). `Kura-Edge-Export-Id` names the export.
   */
  @Post('policies/:id/edge-exports')
  @documentBody(edgeExportRequestSchema)
  @ApiProduces('application/x-tar')
  async create(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @JsonBody(edgeExportRequestSchema) request: EdgeExportRequest,
    @Res() response: Response,
  ): Promise<void> {
    const { view, tar } = await this.exports.create(principal, id, request);
    response
      .status(201)
      .set({
        'Content-Type': 'application/x-tar',
        'Content-Disposition': `attachment; filename="${view.id}.tar"`,
        'Kura-Edge-Export-Id': view.id,
        'Content-Length': String(tar.byteLength),
      })
      .end(tar);
  }

  /** A policy's exports, newest first (its owner, or an admin). */
  @Get('policies/:id/edge-exports')
  list(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.exports.list(principal, id);
  }

  @Get('edge-exports/:id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.exports.get(principal, id);
  }

  /** Revokes an export (its licensee, or an admin): its next usage report or renewal is refused. */
  @Delete('edge-exports/:id')
  revoke(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.exports.revoke(principal, id);
  }

  /**
   * A device's usage log, reported (its licensee, or an admin): records in order that continue the
   * last accepted one; records already accepted are recognised and skipped. 409 with an
   * EDGE_USAGE_* code naming the record when the chain does not continue; EDGE_EXPORT_REVOKED once revoked.
   */
  @Post('edge-exports/:id/usage')
  @HttpCode(200)
  @documentBody(edgeUsageReportSchema)
  report(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @JsonBody(edgeUsageReportSchema) report: EdgeUsageReport) {
    return this.exports.report(principal, id, report);
  }

  /**
   * A new license with a later expiry (its licensee, or an admin), when the device reported usage
   * within KURA_EDGE_REPORT_MAX_AGE_DAYS: `{export, license, signature}`, the license as the exact
   * text signed, for the device's package (kura edge renew).
   */
  @Post('edge-exports/:id/renew')
  @HttpCode(200)
  @documentBody(edgeRenewRequestSchema)
  async renew(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @JsonBody(edgeRenewRequestSchema) request: EdgeRenewRequest,
  ) {
    const { view, license, signature } = await this.exports.renew(principal, id, request);
    return { export: view, license, signature };
  }

  /** The public keys licenses are signed with, JWKS style (no key needed): devices check packages against them. */
  @Get('edge/keys')
  published() {
    return this.keys.published();
  }

  /** Retires the signing key and makes the next (admins); the retired key stays published while its exports live. */
  @Post('edge/keys/rotate')
  rotate(@CurrentPrincipal() principal: Principal) {
    requireRole(principal, [], 'rotate the edge signing key');
    return this.keys.rotate();
  }
}
