import { Controller, Get, Param, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { SliceDownloadService, SlicesService, type Principal } from '@kura/core';
import { createSliceRequestSchema, sliceCreateQuerySchema, sliceDataQuerySchema, type CreateSliceRequest } from '@kura/schema';
import { z } from 'zod';
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
   * The slice's rows in a format. `arrow-file`, `parquet` and `lerobot` answer `Range` (206) so an
   * interrupted download resumes; every format has a strong ETag (`If-None-Match` → 304).
   */
  @Get(':id/data')
  @documentQuery(sliceDataQuerySchema)
  @ApiHeader({ name: 'Range', required: false, description: 'bytes=<first>-<last> (arrow-file, parquet, lerobot)' })
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
    response.setHeader('ETag', download.etag);
    if (download.kind === 'not-modified') {
      response.status(304).end();
      return;
    }
    response.setHeader('Content-Type', download.contentType);
    response.setHeader('Content-Disposition', `attachment; filename="${download.fileName}"`);
    response.setHeader('Accept-Ranges', download.acceptsRanges ? 'bytes' : 'none');
    if (download.range && download.totalBytes !== undefined) {
      response.status(206);
      response.setHeader('Content-Range', `bytes ${download.range.start}-${download.range.end}/${download.totalBytes}`);
      response.setHeader('Content-Length', String(download.range.end - download.range.start + 1));
    } else {
      response.status(200);
      if (download.totalBytes !== undefined) response.setHeader('Content-Length', String(download.totalBytes));
    }
    if (request.method === 'HEAD') {
      download.body.destroy();
      response.end();
      return;
    }
    try {
      await pipeline(download.body, response);
    } catch (error) {
      // Headers are gone: all that is left is to cut the connection so the client sees a short read.
      request.log?.warn({ err: error, sliceId: id }, 'slice download interrupted');
      response.destroy();
    }
  }
}

function header(request: Request, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value.trim() : undefined;
}
