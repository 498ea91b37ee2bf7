import { Controller, Get, Param, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { SliceDownloadService, SlicesService, type Principal } from '@kura/core';
import { createSliceRequestSchema, sliceCreateQuerySchema, sliceDataQuerySchema, type CreateSliceRequest } from '@kura/schema';
import { z } from 'zod';
import { header, sendByteReply } from '../http/byte-reply.js';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, documentQuery, JsonBody, Query } from '../http/zod.js';

@ApiTags('slices')
@ApiBearerAuth()
@Controller('v1/slices')
export class SlicesController {
  constructor(
    private readonly slices: SlicesService,
    private readonly downloads: SliceDownloadService,
  ) {}

  /** Creates an immutable slice; `?stats=true` adds the statistics of its rows to the reply. */
  @Post()
  @documentBody(createSliceRequestSchema)
  @documentQuery(sliceCreateQuerySchema)
  async create(
    @CurrentPrincipal() principal: Principal,
    @JsonBody(createSliceRequestSchema) request: CreateSliceRequest,
    @Query(sliceCreateQuerySchema) query: z.infer<typeof sliceCreateQuerySchema>,
  ) {
    const slice = await this.slices.create(principal, request);
    if (!query.stats) return slice;
    return { ...slice, stats: (await this.slices.stats(principal, slice.id)).features };
  }

  @Get(':id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.slices.get(principal, id);
  }

  @Get(':id/stats')
  stats(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.slices.stats(principal, id);
  }

  /**
   * The slice's rows in a format. `arrow-file`, `parquet`, `lerobot`, `lerobot-v2.1` and `mcap` answer `Range` (206) so an
   * interrupted download resumes; every format has a strong ETag (`If-None-Match` → 304).
   */
  @Get(':id/data')
  @documentQuery(sliceDataQuerySchema)
  @ApiHeader({ name: 'Range', required: false, description: 'bytes=<first>-<last> (arrow-file, parquet, lerobot, lerobot-v2.1, mcap)' })
  @ApiProduces(
    'application/vnd.apache.arrow.stream',
    'application/vnd.apache.arrow.file',
    'application/vnd.apache.parquet',
    'application/x-ndjson',
    'application/x-tar',
  )
  async data(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Query(sliceDataQuerySchema) query: z.infer<typeof sliceDataQuerySchema>,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    const download = await this.downloads.download(principal, id, query.format, {
      range: request.headers.range,
      ifRange: header(request, 'if-range'),
      ifNoneMatch: header(request, 'if-none-match'),
    });
    await sendByteReply(request, response, download, {
      acceptsRanges: download.kind === 'bytes' && download.acceptsRanges,
      bodyHeaders: download.kind === 'bytes' ? { 'Content-Disposition': `attachment; filename="${download.fileName}"` } : {},
      onEarlyEnd: (error) => request.log?.warn({ err: error, sliceId: id }, 'slice download interrupted'),
    });
  }
}
