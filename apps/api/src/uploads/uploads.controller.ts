import { Controller, Get, HttpCode, Inject, Param, Post, Put, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiHeader, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { z } from 'zod';
import {
  KURA_CONFIG,
  UploadsService,
  contentSha256Invalid,
  idempotencyKeyInvalid,
  multipartStartInvalid,
  uploadDeclaredTooLarge,
  uploadPartNotOctetStream,
  uploadPartNumberInvalid,
  type KuraConfig,
  type Principal,
} from '@kura/core';
import { formatNames } from '@kura/formats';
import {
  completeMultipartRequestSchema,
  startMultipartRequestSchema,
  uploadListQuerySchema,
  uploadQuerySchema,
  type CompleteMultipartRequest,
  type UploadListQuery,
} from '@kura/schema';
import { header } from '../http/byte-reply.js';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, documentQuery, JsonBody, Query, zodIssuesToDetails } from '../http/zod.js';

// `format`'s names come from the format registry, which only the server knows (@kura/formats): the
// contract's schemas leave it out and it is added here.
const uploadQueryWithFormatSchema = z.strictObject({ format: z.enum(formatNames).optional(), ...uploadQuerySchema.shape });
const startMultipartWithFormatSchema = startMultipartRequestSchema.extend({ format: z.enum(formatNames).optional() });

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
  @documentQuery(uploadQueryWithFormatSchema)
  async create(
    @CurrentPrincipal() principal: Principal,
    @Param('id') datasetId: string,
    @Query(uploadQueryWithFormatSchema) query: z.infer<typeof uploadQueryWithFormatSchema>,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ) {
    if (request.body !== undefined) {
      const parsed = startMultipartWithFormatSchema.safeParse(request.body);
      if (!parsed.success) {
        throw multipartStartInvalid(zodIssuesToDetails(parsed.error));
      }
      const { multipart: _multipart, ...start } = parsed.data;
      response.status(201);
      return this.uploads.startMultipart(principal, {
        datasetId,
        ...start,
        format: start.format ?? query.format,
        fileName: start.fileName ?? query.fileName,
        featureMap: start.featureMap ?? query.featureMap,
        dropFeatures: start.dropFeatures ?? query.dropFeatures,
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
    const { upload } = await this.uploads.create(principal, {
      datasetId,
      body: request,
      format: query.format,
      fileName: query.fileName,
      featureMap: query.featureMap,
      dropFeatures: query.dropFeatures,
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
