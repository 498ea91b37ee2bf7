import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import {
  assertValidBlobKey,
  assertValidPartNumber,
  BlobNotFoundError,
  BlobRangeError,
  resolveByteRange,
  sortCompletedParts,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  type CompletedPart,
} from './blob-store.js';
import { byteStream, chunksOf } from './stream-chunks.js';

/**
 * The most a part of unknown length is buffered to learn its length (S3 needs a Content-Length
 * per part). Pass `bytes` to stream larger parts.
 */
export const MAX_BUFFERED_PART_BYTES = 64 * 1024 * 1024;

/**
 * BlobStore on an S3-compatible bucket (services mode): AWS S3, MinIO, R2, s3rver.
 *
 * `put` of a stream uses lib-storage's Upload, which holds up to 4 parts of 5 MiB in memory while
 * sending them. An interrupted put may leave an unfinished multipart upload behind (when aborting it
 * fails too); give the bucket a lifecycle rule that aborts incomplete multipart uploads.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  /** Public so that other features (presigned part URLs) use the same client and bucket. */
  readonly client: S3Client;
  readonly bucket: string;

  constructor(params: {
    endpoint?: string;
    bucket: string;
    region: string;
    accessKeyId?: string;
    secretAccessKey?: string;
    forcePathStyle: boolean;
  }) {
    this.bucket = params.bucket;
    this.client = new S3Client({
      endpoint: params.endpoint,
      region: params.region,
      forcePathStyle: params.forcePathStyle,
      // Without explicit keys the SDK's default chain (environment, profile, instance role) applies.
      credentials:
        params.accessKeyId && params.secretAccessKey
          ? { accessKeyId: params.accessKeyId, secretAccessKey: params.secretAccessKey }
          : undefined,
      // The defaults send streamed bodies aws-chunked with trailing checksums, which S3-compatible
      // stores such as s3rver save verbatim (framing included) into the object.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async put(params: { key: string; body: Readable | Buffer; contentType?: string }): Promise<{ bytes: number }> {
    assertValidBlobKey(params.key);
    let bytes = 0;
    // Upload may report a failed cleanup instead of the body's error; the caller needs the body's.
    let bodyFailure: unknown;
    async function* countedChunks(body: Readable | Buffer): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of chunksOf(body)) {
          bytes += chunk.length;
          yield chunk;
        }
      } catch (error) {
        bodyFailure = error;
        throw error;
      }
    }
    // A Buffer keeps its known length, so a small one goes out as one PutObject.
    const body = Buffer.isBuffer(params.body) ? params.body : byteStream(countedChunks(params.body));
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: params.key, Body: body, ContentType: params.contentType },
    });
    try {
      await upload.done();
    } catch (error) {
      // Release the source when S3 failed before reading it all.
      if (!Buffer.isBuffer(body)) body.destroy();
      throw bodyFailure ?? error;
    }
    return { bytes: Buffer.isBuffer(params.body) ? params.body.length : bytes };
  }

  async get(params: { key: string; range?: ByteRange }): Promise<Readable> {
    assertValidBlobKey(params.key);
    const { key, range } = params;
    if (range === undefined) {
      const whole = await this.getObject({ key });
      if (!whole) throw new Error(`S3 refused to read all of "${key}" as an unsatisfiable range`);
      return whole.body;
    }
    // One request in the usual case; the size is only fetched when S3 refuses the range or the
    // range cannot be written as an HTTP range (length 0, bad numbers).
    if (
      Number.isSafeInteger(range.offset) &&
      range.offset >= 0 &&
      (range.length === undefined || (Number.isSafeInteger(range.length) && range.length > 0))
    ) {
      const end = range.length === undefined ? '' : String(range.offset + range.length - 1);
      const response = await this.getObject({ key, httpRange: `bytes=${range.offset}-${end}` });
      if (response) return limitToRange(response, range.length);
    }
    const info = await this.head({ key });
    if (!info) throw new BlobNotFoundError(key);
    const span = resolveByteRange({ key, range, size: info.bytes });
    if (span === undefined) return byteStream([]);
    // S3 refused a range that fits now: the blob was replaced between the two requests.
    const retried = await this.getObject({ key, httpRange: `bytes=${span.start}-${span.end}` });
    if (!retried) throw new BlobRangeError(key, range, info.bytes);
    return limitToRange(retried, span.end - span.start + 1);
  }

  async head(params: { key: string }): Promise<BlobInfo | undefined> {
    assertValidBlobKey(params.key);
    try {
      const output = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: params.key }));
      return { key: params.key, bytes: output.ContentLength ?? 0, lastModified: output.LastModified ?? new Date(0) };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async delete(params: { key: string }): Promise<void> {
    assertValidBlobKey(params.key);
    // S3 answers 204 for absent keys too, which makes delete idempotent.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: params.key }));
  }

  async *list(params: { prefix: string }): AsyncGenerator<BlobInfo> {
    let continuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: params.prefix, ContinuationToken: continuationToken }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield { key: object.Key, bytes: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
  }

  async createMultipartUpload(params: { key: string; contentType?: string }): Promise<{ uploadId: string }> {
    assertValidBlobKey(params.key);
    const output = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: params.key, ContentType: params.contentType }),
    );
    if (!output.UploadId) throw new Error(`S3 started a multipart upload of "${params.key}" without returning its id`);
    return { uploadId: output.UploadId };
  }

  /**
   * Writes one part. S3 needs each part's length up front: pass `bytes` with a stream, or the part
   * is buffered (up to MAX_BUFFERED_PART_BYTES) to measure it.
   */
  /** A presigned URL for one part, so large uploads go straight from the client to the object store. */
  async presignUploadPart(params: { key: string; uploadId: string; partNumber: number; expiresInSeconds: number }): Promise<string> {
    assertValidBlobKey(params.key);
    return getSignedUrl(
      this.client,
      new UploadPartCommand({ Bucket: this.bucket, Key: params.key, UploadId: params.uploadId, PartNumber: params.partNumber }),
      {
        expiresIn: params.expiresInSeconds,
      },
    );
  }

  async uploadPart(params: {
    key: string;
    uploadId: string;
    partNumber: number;
    body: Readable | Buffer;
    bytes?: number;
  }): Promise<CompletedPart> {
    assertValidBlobKey(params.key);
    assertValidPartNumber(params.partNumber);
    const describePart = `part ${params.partNumber} of multipart upload "${params.uploadId}" of "${params.key}"`;
    const body =
      Buffer.isBuffer(params.body) || params.bytes !== undefined ? params.body : await bufferPart({ body: params.body, describePart });
    try {
      const output = await this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: params.key,
          UploadId: params.uploadId,
          PartNumber: params.partNumber,
          Body: body,
          ContentLength: Buffer.isBuffer(body) ? body.length : params.bytes,
        }),
      );
      if (!output.ETag) throw new Error(`S3 stored ${describePart} without returning its etag`);
      return { partNumber: params.partNumber, etag: output.ETag };
    } catch (error) {
      if (isNoSuchUpload(error)) throw uploadNotFoundError(params, error);
      throw error;
    }
  }

  async completeMultipartUpload(params: { key: string; uploadId: string; parts: CompletedPart[] }): Promise<{ bytes: number }> {
    assertValidBlobKey(params.key);
    const parts = sortCompletedParts(params);
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: params.key,
          UploadId: params.uploadId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag })) },
        }),
      );
    } catch (error) {
      if (isNoSuchUpload(error)) throw uploadNotFoundError(params, error);
      throw error;
    }
    // CompleteMultipartUpload does not report the size.
    const info = await this.head({ key: params.key });
    if (!info) throw new Error(`multipart upload "${params.uploadId}" of "${params.key}" completed, yet the blob is absent`);
    return { bytes: info.bytes };
  }

  async abortMultipartUpload(params: { key: string; uploadId: string }): Promise<void> {
    assertValidBlobKey(params.key);
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: params.key, UploadId: params.uploadId }));
    } catch (error) {
      // Idempotent like the filesystem store: an upload that is already gone is aborted enough.
      if (isNoSuchUpload(error)) return;
      throw error;
    }
  }

  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  /** GetObject as a stream; undefined when S3 finds the range unsatisfiable. */
  private async getObject(params: {
    key: string;
    httpRange?: string;
  }): Promise<{ body: Readable; contentLength: number | undefined } | undefined> {
    try {
      const output = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: params.key, Range: params.httpRange }));
      if (!(output.Body instanceof Readable)) throw new Error(`S3 returned no readable body for "${params.key}"`);
      return { body: output.Body, contentLength: output.ContentLength };
    } catch (error) {
      if (isNotFound(error)) throw new BlobNotFoundError(params.key);
      if (error instanceof S3ServiceException && (error.name === 'InvalidRange' || error.$metadata.httpStatusCode === 416))
        return undefined;
      throw error;
    }
  }
}

/**
 * Cuts a range response to the bytes asked for. s3rver answers `bytes=0-0` with the whole blob
 * (it reads the end 0 as "no end"); real S3 never sends more, and then this is a pass-through.
 */
function limitToRange(response: { body: Readable; contentLength: number | undefined }, length: number | undefined): Readable {
  if (length === undefined || response.contentLength === undefined || response.contentLength <= length) return response.body;
  async function* firstBytes(body: Readable, limit: number): AsyncGenerator<Buffer> {
    let remaining = limit;
    for await (const chunk of chunksOf(body)) {
      if (chunk.length >= remaining) {
        yield chunk.subarray(0, remaining);
        return; // Ends the loop, which destroys the response stream.
      }
      remaining -= chunk.length;
      yield chunk;
    }
  }
  return byteStream(firstBytes(response.body, length));
}

async function bufferPart(params: { body: Readable; describePart: string }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of chunksOf(params.body)) {
    bytes += chunk.length;
    if (bytes > MAX_BUFFERED_PART_BYTES) {
      throw new Error(
        `${params.describePart} exceeds ${MAX_BUFFERED_PART_BYTES} bytes without a declared length: pass \`bytes\` to stream it`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, bytes);
}

/** NoSuchKey from GetObject; NotFound from HeadObject, whose 404 has no body to tell more. */
function isNotFound(error: unknown): boolean {
  return error instanceof S3ServiceException && (error.name === 'NoSuchKey' || error.name === 'NotFound');
}

function isNoSuchUpload(error: unknown): boolean {
  return error instanceof S3ServiceException && error.name === 'NoSuchUpload';
}

function uploadNotFoundError(params: { key: string; uploadId: string }, cause: unknown): Error {
  return new Error(
    `multipart upload "${params.uploadId}" of "${params.key}" does not exist: it was never started, or was completed or aborted`,
    { cause },
  );
}
