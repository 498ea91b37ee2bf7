import { Controller, Get, Param, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { EpisodesService, episodeIndexInvalid, type Principal } from '@kura/core';
import { episodeQuerySchema, type EpisodeQuery } from '@kura/schema';
import { header, sendByteReply } from '../http/byte-reply.js';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentQuery, Query } from '../http/zod.js';

@ApiTags('episodes')
@ApiBearerAuth()
@Controller('v1/datasets')
export class EpisodesController {
  constructor(private readonly episodes: EpisodesService) {}

  @Get(':id/episodes')
  @documentQuery(episodeQuerySchema)
  list(@CurrentPrincipal() principal: Principal, @Param('id') datasetId: string, @Query(episodeQuerySchema) query: EpisodeQuery) {
    return this.episodes.list(principal, datasetId, query);
  }

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
      throw episodeIndexInvalid(episodeIndex);
    }
    const video = await this.episodes.video(principal, {
      datasetId,
      episodeIndex: Number(episodeIndex),
      feature,
      range: header(request, 'range'),
      ifRange: header(request, 'if-range'),
      ifNoneMatch: header(request, 'if-none-match'),
    });
    await sendByteReply(request, response, video, {
      acceptsRanges: true,
      // Immutable bytes, but behind access rules that may change: private caches only, revalidated hourly.
      headers: { 'Cache-Control': 'private, max-age=3600' },
      // A player that seeks elsewhere drops the connection mid-file: that is normal, not a failure.
      onEarlyEnd: (error) => request.log?.debug({ err: error, datasetId, episodeIndex }, 'video response ended early'),
    });
  }
}
