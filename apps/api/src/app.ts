import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { attachSessionSockets } from './inference/session-socket.js';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import express, { type NextFunction, type Request, type Response } from 'express';
import { KeysService, SessionsService, type KuraConfig, type Logger } from '@kura/core';
import { AppModule } from './app.module.js';
import { MetricsService } from './health/metrics.service.js';
import { sendError } from './http/error-body.js';
import { ErrorFilter } from './http/error.filter.js';
import { NestPinoLogger } from './http/nest-logger.js';
import { buildOpenApiDocument } from './http/openapi.js';
import { requestLogging } from './http/request-logging.js';
import { defaultWebDirectory, webViewer } from './web/web-viewer.js';

/**
 * Builds the HTTP application (not yet listening). Infrastructure (Postgres) must be up.
 * `webDirectory` is the built web viewer (default: apps/web/dist).
 */
export async function createApp(params: {
  config: KuraConfig;
  logger: Logger;
  databaseUrl: string;
  /** The embedded Postgres's outage, when this process supervises one (/health reports it). */
  databaseOutage?: () => string | undefined;
  webDirectory?: string;
}): Promise<NestExpressApplication> {
  const { config, logger } = params;
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(params), new ExpressAdapter(), {
    bodyParser: false,
    logger: new NestPinoLogger(logger.child({ component: 'nest' })),
  });
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestLogging(logger.child({ component: 'http' })));
  app.use(app.get(MetricsService).middleware);
  // The viewer's files and routes; /v1, /health, /docs and /metrics pass through to Nest.
  app.use(webViewer({ directory: params.webDirectory ?? defaultWebDirectory }));
  // JSON only for JSON media types; other bodies (URDF, uploads) stay streams for their handlers.
  app.use(refuseDeclaredOversizeJson(config.http.jsonBodyLimit));
  app.use(express.json({ limit: config.http.jsonBodyLimit, strict: true, type: ['application/json', 'application/*+json'] }));
  app.use(bodyParserErrors);
  app.useGlobalFilters(new ErrorFilter(logger.child({ component: 'http' })));
  app.enableShutdownHooks([]);

  SwaggerModule.setup('docs', app, buildOpenApiDocument(app), { jsonDocumentUrl: 'docs/json', yamlDocumentUrl: 'docs/yaml' });

  const sockets = attachSessionSockets({
    server: app.getHttpServer(),
    keys: app.get(KeysService),
    sessions: app.get(SessionsService),
    logger: logger.child({ component: 'ws' }),
  });
  // Upgraded sockets are no longer the HTTP server's: close them, or closing the app would wait on them.
  const closeApp = app.close.bind(app);
  app.close = async () => {
    for (const client of sockets.clients) client.terminate();
    sockets.close();
    await closeApp();
  };
  return app;
}

/**
 * A JSON body whose declared length is over the limit is refused at once. body-parser would first
 * read (and drop) every declared byte to keep the connection alive, so a client that declares 2 MiB
 * and sends nothing would hold the request open until the server's timeout.
 */
function refuseDeclaredOversizeJson(limit: number) {
  return (request: Request, response: Response, next: NextFunction): void => {
    const declared = Number(request.headers['content-length']);
    const type = request.headers['content-type'] ?? '';
    if (Number.isFinite(declared) && declared > limit && /^application\/([\w.+-]+\+)?json\b/i.test(type)) {
      sendError(response, 413, {
        code: 'PAYLOAD_TOO_LARGE',
        message: `the JSON body is larger than the limit`,
        details: { limit },
      });
      return;
    }
    next();
  };
}

/** Body parser failures happen before Nest's routing, so they are answered here in the same shape. */
function bodyParserErrors(error: unknown, _request: Request, response: Response, next: NextFunction): void {
  const type = (error as { type?: string } | null)?.type;
  if (type === 'entity.too.large') {
    sendError(response, 413, {
      code: 'PAYLOAD_TOO_LARGE',
      message: `the JSON body is larger than the limit`,
      details: { limit: (error as { limit?: number }).limit },
    });
  } else if (type === 'entity.parse.failed') {
    sendError(response, 400, { code: 'INVALID_JSON', message: `the body is not valid JSON: ${(error as Error).message}` });
  } else if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    sendError(response, 415, { code: 'UNSUPPORTED_MEDIA_TYPE', message: (error as Error).message });
  } else if (type === 'request.aborted') {
    response.destroy();
  } else {
    next(error);
  }
}
