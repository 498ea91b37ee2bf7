import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';

/**
 * The OpenAPI document of the app's controllers (served at /docs/json). `npm run docs:api` renders
 * docs/api.md's request tables from it, so both come from the same decorators and zod schemas.
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  return SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Kura')
      .setDescription('Robot interaction data: robots, datasets, uploads, slices, policies and inference. Reference: docs/api.md.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
}
