import { Controller, Get, HttpCode, Inject, Param, Post, Put, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiHeader, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import {
  KURA_CONFIG,
  UploadsService,
  contentSha256Invalid,
  idempotencyKeyInvalid,
  multipartStartInvalid,
  uploadDeclaredTooLarge,
  uploadOptionsInvalid,
  uploadOptionsNeedFormat,
  uploadPartNotOctetStream,
  uploadPartNumberInvalid,
  type KuraConfig,
  type Principal,
} from '@kura/core';
import { optionsPath, parseFormatOptions } from '@kura/formats';
import {
  completeMultipartRequestSchema,
  startMultipartRequestSchema,
  uploadListQuerySchema,
  uploadQuerySchema,
  type CompleteMultipartRequest,
  type FormatName,
  type UploadListQuery,
  type UploadQuery,
} from '@kura/schema';
import { header } from '../http/byte-reply.js';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, documentQuery, JsonBody, Query, zodIssuesToDetails } from '../http/zod.js';

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
    @Query(uploadQuerySchema) query: UploadQuery,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ) {
    if (request.body !== undefined) {
      const parsed = startMultipartRequestSchema.safeParse(request.body);
      if (!parsed.success) {
        throw multipartStartInvalid(zodIssuesToDetails(parsed.error));
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
      throw uploadDeclaredTooLarge(declared, this.config.uploads.maxBytes);
    }
    const expectedSha256 = header(request, 'content-sha256');
    if (expectedSha256 !== undefined && !sha256Header.test(expectedSha256)) {
      throw contentSha256Invalid();
    }
    const idempotencyKey = header(request, 'idempotency-key');
    if (idempotencyKey !== undefined && (idempotencyKey.length < 1 || idempotencyKey.length > 255)) {
      throw idempotencyKeyInvalid();
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
      declaredBytes: Number.isSafeInteger(declared) && declared > 0 ? declared : undefined,
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
    if (request.body !== undefined) throw uploadPartNotOctetStream();
    const number = Number(partNumber);
    if (!Number.isInteger(number) || number < 1) throw uploadPartNumberInvalid();
    const part = await this.uploads.putPart(principal, id, number, request);
    response.setHeader('ETag', part.etag);
    return part;
  }

  /** Joins the parts of a resumable upload and queues its ingest. */
  @Post('uploads/:id/complete')
  @HttpCode(202)
  @documentBody(completeMultipartRequestSchema)
  complete(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @JsonBody(completeMultipartRequestSchema) body: CompleteMultipartRequest,
  ) {
    return this.uploads.completeMultipart(principal, id, body.parts);
  }

  @Get('uploads/:id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.uploads.get(principal, id);
  }

  @Get('datasets/:id/uploads')
  @documentQuery(uploadListQuerySchema)
  list(@CurrentPrincipal() principal: Principal, @Param('id') datasetId: string, @Query(uploadListQuerySchema) query: UploadListQuery) {
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
  if (format === undefined) throw uploadOptionsNeedFormat();
  const parsed = parseFormatOptions(format, options);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({ path: optionsPath(issue), code: issue.code, message: issue.message }));
  throw uploadOptionsInvalid(format, issues);
}
