import { Controller, Get, Param, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { AppError, EpisodesService, type Principal } from '@kura/core';
import { CurrentPrincipal } from '../http/principal.decorator.js';

@ApiTags('episodes')
@ApiBearerAuth()
@Controller('v1/datasets')
export class EpisodesController {
  constructor(private readonly episodes: EpisodesService) {}

  /**
   * The video file (mp4) of an episode's video feature, as imported: its frames' `timestamp`s in
   * slices are positions in this file. Answers `Range` (206) so players can seek, with a strong ETag.
   */
  @Get(':id/episodes/:episodeIndex/videos/:feature')
  @ApiHeader({ name: 'Range', required: false, description: 'bytes=<first>-<last>' })
  @ApiProduces('video/mp4')
  async video(
    @CurrentPrincipal() principal: Principal,
    @Param('id') datasetId: string,
    @Param('episodeIndex') episodeIndex: string,
    @Param('feature') feature: string,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    if (!/^\d{1,9}$/.test(episodeIndex)) {
      throw new AppError({
        code: 'VALIDATION_FAILED',
        kind: 'invalid',
        message: `the episode index must be a non-negative integer, not "${episodeIndex}"`,
        location: { field: 'episodeIndex' },
      });
    }
    const video = await this.episodes.video(principal, {
      datasetId,
      episodeIndex: Number(episodeIndex),
      feature,
      range: header(request, 'range'),
      ifRange: header(request, 'if-range'),
      ifNoneMatch: header(request, 'if-none-match'),
    });
    response.setHeader('ETag', video.etag);
    // Immutable bytes, but behind access rules that may change: private caches only, revalidated hourly.
    response.setHeader('Cache-Control', 'private, max-age=3600');
    if (video.kind === 'not-modified') {
      response.status(304).end();
      return;
    }
    response.setHeader('Content-Type', video.contentType);
    response.setHeader('Accept-Ranges', 'bytes');
    if (video.range) {
      response.status(206);
      response.setHeader('Content-Range', `bytes ${video.range.start}-${video.range.end}/${video.totalBytes}`);
      response.setHeader('Content-Length', String(video.range.end - video.range.start + 1));
    } else {
      response.status(200);
      response.setHeader('Content-Length', String(video.totalBytes));
    }
    if (request.method === 'HEAD') {
      video.body.destroy();
      response.end();
      return;
    }
    try {
      await pipeline(video.body, response);
    } catch (error) {
      // A player that seeks elsewhere drops the connection mid-file: that is normal, not a failure.
      request.log?.debug({ err: error, datasetId, episodeIndex }, 'video response ended early');
      response.destroy();
    }
  }
}

function header(request: Request, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value.trim() : undefined;
}
