import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { ApiBody, ApiQuery, type SchemaObject } from '@nestjs/swagger';
import type { Request } from 'express';
import { z, type ZodError, type ZodType } from 'zod';
import { AppError } from '@kura/core';

/** Field-level problems, each with its path: `{ issues: [{ path: "cameras.1.name", code, message }] }`. */
export function zodIssuesToDetails(error: ZodError): Record<string, unknown> {
  return {
    issues: error.issues.map((issue) => ({
      path: issue.path.map(String).join('.'),
      code: issue.code,
      message: issue.message,
      ...('keys' in issue ? { keys: issue.keys } : {}),
    })),
  };
}

function validate<T extends ZodType>(schema: T, value: unknown, where: 'body' | 'query'): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const details = zodIssuesToDetails(result.error);
    const first = result.error.issues[0];
    const summary = first ? `${first.path.length ? `${first.path.join('.')}: ` : ''}${first.message}` : 'invalid';
    throw new AppError({ code: 'VALIDATION_FAILED', kind: 'invalid', message: `invalid request ${where}: ${summary}`, details });
  }
  return result.data;
}

/**
 * The request's JSON body, validated by `schema` (strict schemas reject unknown fields). A body in
 * another media type is 415; a missing one is 400.
 */
const jsonBody = createParamDecorator(({ zodSchema: schema }: { zodSchema: ZodType }, context: ExecutionContext) => {
  const request = context.switchToHttp().getRequest<Request>();
  const hasBody = Number(request.headers['content-length'] ?? 0) > 0 || request.headers['transfer-encoding'] !== undefined;
  if (hasBody && !request.is(['application/json', 'application/*+json'])) {
    throw new AppError({
      code: 'UNSUPPORTED_MEDIA_TYPE',
      kind: 'unsupported_media_type',
      message: `send JSON with Content-Type: application/json (got ${request.headers['content-type'] ?? 'none'})`,
    });
  }
  return validate(schema, request.body, 'body');
});
// Nest takes an argument with a `transform` method (as zod schemas have) for a pipe, and `{ schema }` for its own
// validation options, so the schema travels under another name.
export const JsonBody = (schema: ZodType) => jsonBody({ zodSchema: schema });

/** The query string, validated by `schema`. */
const query = createParamDecorator(({ zodSchema: schema }: { zodSchema: ZodType }, context: ExecutionContext) =>
  validate(schema, context.switchToHttp().getRequest<Request>().query, 'query'),
);
export const Query = (schema: ZodType) => query({ zodSchema: schema });

/** Documents a JSON body in OpenAPI from the same zod schema that validates it. */
export const documentBody = (schema: ZodType) => ApiBody({ schema: toOpenApi(schema) });

/** Documents query parameters in OpenAPI from a zod object schema. */
export function documentQuery(schema: ZodType) {
  const json = toOpenApi(schema);
  const decorators = Object.entries(json.properties ?? {}).map(([name, property]) =>
    ApiQuery({ name, required: false, schema: property as SchemaObject }),
  );
  return (target: object, key: string | symbol, descriptor: PropertyDescriptor) => {
    for (const decorator of decorators) decorator(target, key, descriptor);
  };
}

// JSON Schema (draft 2020-12) from zod is what OpenAPI 3.1 schema objects are; the types differ only in name.
function toOpenApi(schema: ZodType): SchemaObject {
  return z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    // JSON Schema has no dates; on the wire they are ISO 8601 strings (`?from=2026-12-01T00:00:00Z`).
    override: (context) => {
      if (context.zodSchema._zod.def.type === 'date') Object.assign(context.jsonSchema, { type: 'string', format: 'date-time' });
    },
  }) as SchemaObject;
}
