import { Injectable } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { JobsService } from '@kura/core';

/** Prometheus metrics: request latency by route, jobs by state, and the process defaults. */
@Injectable()
export class MetricsService {
  private readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly requestDuration = new Histogram({
    name: 'kura_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  constructor(jobs: JobsService) {
    collectDefaultMetrics({ register: this.registry, prefix: 'kura_' });
    new Gauge({
      name: 'kura_jobs',
      help: 'Jobs in the database by state',
      labelNames: ['state'] as const,
      registers: [this.registry],
      async collect() {
        const counts = await jobs.countByState();
        for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
      },
    });
  }

  /** Express middleware timing every request; the route label is the matched pattern, not the raw path. */
  readonly middleware = (request: Request, response: Response, next: NextFunction): void => {
    const stop = this.requestDuration.startTimer();
    response.once('finish', () => {
      const routePath: unknown = (request.route as { path?: unknown } | undefined)?.path;
      const route = typeof routePath === 'string' ? `${request.baseUrl}${routePath}` : 'unmatched';
      stop({ method: request.method, route, status: String(response.statusCode) });
    });
    next();
  };

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
