import { Controller, Get, HttpCode, Inject, Param, Post, Put, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiHeader, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { AppError, KURA_CONFIG, UploadsService, type KuraConfig, type Principal } from '@kura/core';
import { optionsPath, parseFormatOptions } from '@kura/formats';
import { featureNamePattern, findUnstorableText, formatNames, listQuerySchema, type FormatName } from '@kura/schema';
import { header } from '../http/byte-reply.js';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, documentQuery, JsonBody, Query, zodIssuesToDetails } from '../http/zod.js';

/**
 * A feature-name map; `__proto__` (which a plain object cannot hold as a key: zod would drop it without
 * a word) and text Postgres cannot store are refused rather than lost.
 */
const featureNameMapSchema = z
  .unknown()
  .superRefine((value, context) => {
    if (value !== null && typeof value === 'object' && Object.hasOwn(value, '__proto__'))
      context.addIssue({ code: 'custom', message: 'a feature may not be named "__proto__"' });
    const unstorable = findUnstorableText(value);
    if (unstorable) context.addIssue({ code: 'custom', message: unstorable.problem, path: unstorable.path });
  })
  .pipe(z.record(z.string().min(1), z.string().regex(/^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/, 'a feature name')));

const featureMapSchema = z
  .string()
  .transform((text, context) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      context.addIssue({
        code: 'custom',
        message: 'featureMap must be a JSON object, e.g. {"observation.images.top":"observation.images.high"}',
      });
      return z.NEVER;
    }
  })
  .pipe(featureNameMapSchema);

const featureNameSchema = z.string().regex(featureNamePattern, 'a feature name, e.g. observation.images.front');
/** `?dropFeatures=observation.images.front,observation.images.wrist`: features the upload leaves out. */
const dropFeaturesQuerySchema = z
  .string()
  .transform((text) => text.split(',').map((name) => name.trim()))
  .pipe(z.array(featureNameSchema).min(1).max(1000));

/**
 * The format's options for one upload: a JSON object, checked here for what Postgres cannot store and
 * then by the format's own options schema (`checkedOptions`).
 */
const uploadOptionsSchema = z
  .unknown()
  .superRefine((value, context) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      context.addIssue({ code: 'custom', message: 'options must be a JSON object, e.g. {}' });
      return;
    }
    const unstorable = findUnstorableText(value);
    if (unstorable) context.addIssue({ code: 'custom', message: unstorable.problem, path: unstorable.path });
  })
  // Kept as parsed (not rebuilt, which would turn a `__proto__` key into a prototype): the format's
  // strict options schema then sees every key.
  .transform((value) => value as Record<string, unknown>);
const uploadOptionsQuerySchema = z
  .string()
  .transform((text, context) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      context.addIssue({ code: 'custom', message: 'options must be a JSON object, e.g. {}' });
      return z.NEVER;
    }
  })
  .pipe(uploadOptionsSchema);

const uploadQuerySchema = z.strictObject({
  format: z.enum(formatNames).optional(),
  fileName: z.string().min(1).max(255).optional(),
  featureMap: featureMapSchema.optional(),
  dropFeatures: dropFeaturesQuerySchema.optional(),
  options: uploadOptionsQuerySchema.optional(),
});
const uploadListQuerySchema = listQuerySchema.extend({
  status: z.enum(['uploading', 'received', 'processing', 'published', 'failed']).optional(),
});
const startMultipartSchema = z.strictObject({
  multipart: z.literal(true),
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, '64 hex digits'),
  partSize: z.number().int().positive().optional(),
  fileName: z.string().min(1).max(255).optional(),
  format: z.enum(formatNames).optional(),
  featureMap: featureNameMapSchema.optional(),
  dropFeatures: z.array(featureNameSchema).min(1).max(1000).optional(),
  options: uploadOptionsSchema.optional(),
});
const completeSchema = z.strictObject({
  parts: z
    .array(z.strictObject({ partNumber: z.number().int().positive(), etag: z.string().min(1).max(200) }))
    .min(1)
    .max(10_000),
});

const sha256Header = /^[0-9a-fA-F]{64}$/;

@ApiTags('uploads')
@ApiBearerAuth()
@Controller('v1')
export class UploadsController {
  constructor(
    private readonly uploads: UploadsService,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
  ) {}

  /**
   * Streams one file or a .tar/.tar.gz/.zip of a folder into the dataset; 202 once the bytes are
   * stored. A JSON body `{ multipart: true, bytes, sha256 }` starts a resumable upload instead and
   * gets 201 with one URL per part.
   */
  @Post('datasets/:id/uploads')
  @HttpCode(202)
  @ApiConsumes('application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiHeader({ name: 'Content-SHA256', required: false, description: 'hex sha256 of the body; the upload is refused when it differs' })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'a repeat with the same key returns the first upload' })
  @documentQuery(uploadQuerySchema)
  async create(
    @CurrentPrincipal() principal: Principal,
    @Param('id') datasetId: string,
    @Query(uploadQuerySchema) query: z.infer<typeof uploadQuerySchema>,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ) {
    if (request.body !== undefined) {
      const parsed = startMultipartSchema.safeParse(request.body);
      if (!parsed.success) {
        throw new AppError({
          code: 'VALIDATION_FAILED',
          kind: 'invalid',
          message:
            'a JSON body starts a resumable upload: { "multipart": true, "bytes", "sha256" }; to send a file, use a non-JSON Content-Type (e.g. application/octet-stream)',
          details: zodIssuesToDetails(parsed.error),
        });
      }
      const { multipart: _multipart, ...start } = parsed.data;
      const format = start.format ?? query.format;
      const options = checkedOptions(format, start.options ?? query.options);
      response.status(201);
      return this.uploads.startMultipart(principal, {
        datasetId,
        ...start,
        format,
        fileName: start.fileName ?? query.fileName,
        featureMap: start.featureMap ?? query.featureMap,
        dropFeatures: start.dropFeatures ?? query.dropFeatures,
        options,
        idempotencyKey: header(request, 'idempotency-key'),
        maxBytes: this.config.uploads.maxBytes,
      });
    }
    // Refused by what it declares, before a byte is read (the error reply drops what still arrives
    // for 10 s, then cuts the connection: see drainRefusedBody).
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.config.uploads.maxBytes) {
      throw new AppError({
        code: 'PAYLOAD_TOO_LARGE',
        kind: 'too_large',
        message: `the upload declares ${declared} bytes, more than ${this.config.uploads.maxBytes}; use a multipart upload`,
        details: { limit: this.config.uploads.maxBytes },
      });
    }
    const expectedSha256 = header(request, 'content-sha256');
    if (expectedSha256 !== undefined && !sha256Header.test(expectedSha256)) {
      throw new AppError({
        code: 'VALIDATION_FAILED',
        kind: 'invalid',
        message: 'Content-SHA256 must be 64 hex digits',
        location: { field: 'Content-SHA256' },
      });
    }
    const idempotencyKey = header(request, 'idempotency-key');
    if (idempotencyKey !== undefined && (idempotencyKey.length < 1 || idempotencyKey.length > 255)) {
      throw new AppError({
        code: 'VALIDATION_FAILED',
        kind: 'invalid',
        message: 'Idempotency-Key must be 1 to 255 characters',
        location: { field: 'Idempotency-Key' },
      });
    }
    const options = checkedOptions(query.format, query.options);
    const { upload } = await this.uploads.create(principal, {
      datasetId,
      body: request,
      format: query.format,
      fileName: query.fileName,
      featureMap: query.featureMap,
      dropFeatures: query.dropFeatures,
      options,
      expectedSha256,
      idempotencyKey,
      maxBytes: this.config.uploads.maxBytes,
    });
    return upload;
  }

  /** One part of a resumable upload (embedded mode; in services mode parts go to presigned URLs). */
  @Put('uploads/:id/parts/:partNumber')
  @ApiConsumes('application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  async putPart(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Param('partNumber') partNumber: string,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ) {
    if (request.body !== undefined)
      throw new AppError({
        code: 'UNSUPPORTED_MEDIA_TYPE',
        kind: 'unsupported_media_type',
        message: 'send the part bytes with Content-Type: application/octet-stream',
      });
    const number = Number(partNumber);
    if (!Number.isInteger(number) || number < 1)
      throw new AppError({
        code: 'UPLOAD_PART_INVALID',
        kind: 'invalid',
        message: 'the part number must be a positive integer',
        location: { field: 'partNumber' },
      });
    const part = await this.uploads.putPart(principal, id, number, request);
    response.setHeader('ETag', part.etag);
    return part;
  }

  /** Joins the parts of a resumable upload and queues its ingest. */
  @Post('uploads/:id/complete')
  @HttpCode(202)
  @documentBody(completeSchema)
  complete(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @JsonBody(completeSchema) body: z.infer<typeof completeSchema>,
  ) {
    return this.uploads.completeMultipart(principal, id, body.parts);
  }

  @Get('uploads/:id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.uploads.get(principal, id);
  }

  @Get('datasets/:id/uploads')
  @documentQuery(uploadListQuerySchema)
  list(
    @CurrentPrincipal() principal: Principal,
    @Param('id') datasetId: string,
    @Query(uploadListQuerySchema) query: z.infer<typeof uploadListQuerySchema>,
  ) {
    return this.uploads.list(principal, datasetId, query);
  }
}

/**
 * An upload's options checked by its format's options schema: 400 VALIDATION_FAILED located at the
 * option (`options.topics[0]`). Options need `format`: each format takes its own, and detection
 * happens only once the bytes are stored, too late for a 400.
 */
function checkedOptions(format: FormatName | undefined, options: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (options === undefined) return undefined;
  if (format === undefined) {
    throw new AppError({
      code: 'VALIDATION_FAILED',
      kind: 'invalid',
      message: `options need a format: pass format (one of ${formatNames.join(', ')}) with them`,
      location: { field: 'format' },
    });
  }
  const parsed = parseFormatOptions(format, options);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({ path: optionsPath(issue), code: issue.code, message: issue.message }));
  const first = issues[0]!;
  throw new AppError({
    code: 'VALIDATION_FAILED',
    kind: 'invalid',
    message: `invalid options for ${format}: ${first.path}: ${first.message}`,
    details: { issues },
    location: { field: first.path },
  });
}
