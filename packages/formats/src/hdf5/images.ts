import jpeg from 'jpeg-js';
import { imageEncoding, imageShape } from '../image-header.js';
import { encodePng } from '../png.js';

/** How raw (uncompressed) camera frames are stored in Kura. */
export type RawImageEncoding = 'png' | 'jpeg';

/** Options shared by the HDF5 importers. */
export interface Hdf5ImportOptions {
  /**
   * Encoding of raw uint8 frames. Default `png`: lossless, so the imported pixels are exactly the
   * recorded ones (what a policy was trained on); `jpeg` is 5–10× smaller and lossy.
   * Frames that are already JPEG in the file (ALOHA `compress`) are kept as they are either way.
   */
  imageEncoding?: RawImageEncoding;
  /** JPEG quality 1–100 when `imageEncoding` is `jpeg`. Default 95. */
  jpegQuality?: number;
}

/** Encodes one H×W×3 uint8 RGB frame (row-major, channel-last) as PNG or JPEG. */
export function encodeFrame(pixels: Uint8Array, height: number, width: number, options: Hdf5ImportOptions): Uint8Array {
  if ((options.imageEncoding ?? 'png') === 'png') {
    return encodePng({ pixels, width, height, channels: 3 });
  }
  // jpeg-js takes RGBA.
  const rgba = new Uint8Array(width * height * 4);
  for (let pixel = 0, source = 0, target = 0; pixel < width * height; pixel++, source += 3, target += 4) {
    rgba[target] = pixels[source]!;
    rgba[target + 1] = pixels[source + 1]!;
    rgba[target + 2] = pixels[source + 2]!;
    rgba[target + 3] = 255;
  }
  const encoded = jpeg.encode({ width, height, data: rgba }, options.jpegQuality ?? 95).data;
  return new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
}

/** Whether bytes start with the JPEG start-of-image marker. */
export function isJpeg(bytes: Uint8Array): boolean {
  return imageEncoding(bytes) === 'jpeg';
}

/** Height, width and colour components from a JPEG's start-of-frame header, without decoding; undefined if there is none. */
export function jpegDimensions(bytes: Uint8Array): { height: number; width: number; channels: number } | undefined {
  const shape = isJpeg(bytes) ? imageShape(bytes) : undefined;
  return shape ? { height: shape[0], width: shape[1], channels: shape[2] } : undefined;
}

/** The length of a zero-padded row: one past its last non-zero byte (a JPEG ends with FF D9, never 00). */
export function unpaddedLength(row: Uint8Array): number {
  let end = row.length;
  while (end > 0 && row[end - 1] === 0) end--;
  return end;
}
