import { encodePng } from '../png.js';
import { valueAt } from './decode.js';

/** A raw camera frame as `sensor_msgs/Image` holds it (ROS 1 and 2 alike): size, row stride, pixel format, bytes. */
export interface RawImage {
  width: number;
  height: number;
  /** Bytes per row, padding included. */
  step: number;
  encoding: string;
  bigEndian: boolean;
  data: Uint8Array;
}

interface PixelFormat {
  channels: 1 | 3 | 4;
  bitDepth: 8 | 16;
  /** Blue first (bgr8, bgra8): swapped to RGB, the order PNG stores. */
  bgr?: true;
}

/** The pixel formats Kura turns into PNG, by `sensor_msgs/image_encodings` name. Others (Bayer, YUV, float depth…) are refused by name. */
const PIXEL_FORMATS: Record<string, PixelFormat> = {
  rgb8: { channels: 3, bitDepth: 8 },
  bgr8: { channels: 3, bitDepth: 8, bgr: true },
  rgba8: { channels: 4, bitDepth: 8 },
  bgra8: { channels: 4, bitDepth: 8, bgr: true },
  mono8: { channels: 1, bitDepth: 8 },
  '8UC1': { channels: 1, bitDepth: 8 },
  mono16: { channels: 1, bitDepth: 16 },
  '16UC1': { channels: 1, bitDepth: 16 },
};
export const RAW_PIXEL_FORMATS = Object.keys(PIXEL_FORMATS);

/** The raw image whose bytes are at `dataPath` (`data`, or `camera.data`): the object holding them has the Image fields. */
export function rawImageAt(message: unknown, dataPath: string): RawImage | undefined {
  const parent = dataPath.includes('.') ? valueAt(message, dataPath.slice(0, dataPath.lastIndexOf('.'))) : message;
  if (parent === null || typeof parent !== 'object') return undefined;
  const { width, height, step, encoding, is_bigendian: bigEndian } = parent as Record<string, unknown>;
  const data = valueAt(message, dataPath);
  if (typeof width !== 'number' || typeof height !== 'number' || typeof step !== 'number' || typeof encoding !== 'string') return undefined;
  if (!(data instanceof Uint8Array)) return undefined;
  return { width, height, step, encoding, bigEndian: bigEndian === 1 || bigEndian === true, data };
}

/** The PNG's `[height, width, channels]` for a raw image, or why Kura does not take it. */
export function rawImageShape(image: RawImage): [number, number, number] | string {
  const format = PIXEL_FORMATS[image.encoding];
  if (!format) return `its pixel encoding "${image.encoding}" is not one Kura turns into PNG (${RAW_PIXEL_FORMATS.join(', ')})`;
  if (!Number.isSafeInteger(image.width) || !Number.isSafeInteger(image.height) || image.width < 1 || image.height < 1)
    return `its size ${image.width}×${image.height} is not an image's`;
  const rowBytes = image.width * format.channels * (format.bitDepth / 8);
  if (image.step < rowBytes || image.data.length < image.step * (image.height - 1) + rowBytes)
    return `its ${image.data.length} bytes do not hold ${image.height} rows of ${rowBytes} bytes ${image.step} apart (step)`;
  return [image.height, image.width, format.channels];
}

/** The raw image as a PNG: row padding dropped, BGR swapped to RGB, 16-bit samples big-endian as PNG stores them. Call rawImageShape first. */
export function rawImageToPng(image: RawImage): Uint8Array {
  const format = PIXEL_FORMATS[image.encoding]!;
  const sampleBytes = format.bitDepth / 8;
  const pixelBytes = format.channels * sampleBytes;
  const rowBytes = image.width * pixelBytes;
  const pixels = new Uint8Array(rowBytes * image.height);
  for (let row = 0; row < image.height; row++)
    pixels.set(image.data.subarray(row * image.step, row * image.step + rowBytes), row * rowBytes);
  if (format.bgr)
    for (let at = 0; at < pixels.length; at += pixelBytes) {
      const blue = pixels[at]!;
      pixels[at] = pixels[at + 2]!;
      pixels[at + 2] = blue;
    }
  if (sampleBytes === 2 && !image.bigEndian)
    for (let at = 0; at < pixels.length; at += 2) {
      const low = pixels[at]!;
      pixels[at] = pixels[at + 1]!;
      pixels[at + 1] = low;
    }
  return encodePng({ pixels, width: image.width, height: image.height, channels: format.channels, bitDepth: format.bitDepth });
}
