import { convertIndexedToRgb, decode as decodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { imageEncoding } from './image-header.js';

/** An image as 8-bit RGB (PIL's `convert("RGB")`: grey is repeated, alpha is dropped). */
export function decodeRgb(bytes: Uint8Array): { width: number; height: number; rgb: Uint8Array } | undefined {
  const encoding = imageEncoding(bytes);
  if (encoding === 'jpeg') {
    // jpeg-js refuses frames past 100 megapixels and 512 MB of decoding memory (its defaults).
    const { width, height, data } = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
    return { width, height, rgb: data };
  }
  if (encoding !== 'png') return undefined;
  const png = decodePng(bytes);
  const { width, height } = png;
  let data: ArrayLike<number> = png.data;
  let channels = png.channels;
  let shift = png.depth === 16 ? 8 : 0;
  if (png.palette) {
    data = convertIndexedToRgb(png);
    channels = data.length / (width * height);
    shift = 0;
  } else if (png.depth !== 8 && png.depth !== 16) return undefined;
  const rgb = new Uint8Array(width * height * 3);
  for (let pixel = 0; pixel < width * height; pixel++) {
    for (let channel = 0; channel < 3; channel++) {
      // 1 or 2 channels are grey (+ alpha): the grey value goes to every channel.
      const source = channels >= 3 ? pixel * channels + channel : pixel * channels;
      rgb[pixel * 3 + channel] = data[source]! >> shift;
    }
  }
  return { width, height, rgb };
}
