import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { HealthService } from '@kura/core';
import { MetricsService } from './metrics.service.js';

@ApiTags('operations')
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthService,
    private readonly metrics: MetricsService,
  ) {}

  /** 200 when the database, queue and blob store all answer; 503 naming the failing check otherwise. */
  @Get('health')
  async check(@Res({ passthrough: true }) response: Response) {
    const report = await this.health.check();
    response.status(report.status === 'ok' ? 200 : 503);
    return report;
  }

  /** Prometheus text format. */
  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  async scrape(@Res({ passthrough: true }) response: Response) {
    response.setHeader('Content-Type', this.metrics.contentType);
    return this.metrics.render();
  }
}
