/*
 * Just enough of JPEG and PNG to recognise an encoded image and read its size from the header, so that
 * an image feature's shape can be given without decoding pixels.
 */

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The image encoding `bytes` start with (JPEG SOI + marker, or the PNG signature), if any. */
export function imageEncoding(bytes: Uint8Array): 'jpeg' | 'png' | undefined {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (PNG_SIGNATURE.every((byte, index) => bytes[index] === byte)) return 'png';
  return undefined;
}

/** `[height, width, channels]` from a JPEG's frame header or a PNG's IHDR chunk; undefined when not found. */
export function imageShape(bytes: Uint8Array): [number, number, number] | undefined {
  const encoding = imageEncoding(bytes);
  if (encoding === 'png') return pngShape(bytes);
  if (encoding === 'jpeg') return jpegShape(bytes);
  return undefined;
}

function pngShape(bytes: Uint8Array): [number, number, number] | undefined {
  // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), bit depth (1), colour type (1).
  if (bytes.length < 26) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const channelsByColourType: Record<number, number> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };
  const channels = channelsByColourType[view.getUint8(25)];
  return channels === undefined || width === 0 || height === 0 ? undefined : [height, width, channels];
}

function jpegShape(bytes: Uint8Array): [number, number, number] | undefined {
  let offset = 2;
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) return undefined;
    const marker = bytes[offset + 1] ?? 0;
    // Fill bytes, and markers that stand alone (no length): TEM, RSTn, SOI.
    if (marker === 0xff) {
      offset += 1;
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      offset += 2;
      continue;
    }
    const segmentLength = ((bytes[offset + 2] ?? 0) << 8) | (bytes[offset + 3] ?? 0);
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width, components.
    const isFrameHeader = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrameHeader) {
      if (offset + 10 > bytes.length) return undefined;
      const height = ((bytes[offset + 5] ?? 0) << 8) | (bytes[offset + 6] ?? 0);
      const width = ((bytes[offset + 7] ?? 0) << 8) | (bytes[offset + 8] ?? 0);
      const channels = bytes[offset + 9] ?? 0;
      return height === 0 || width === 0 || channels === 0 ? undefined : [height, width, channels];
    }
    if (marker === 0xda || segmentLength < 2) return undefined;
    offset += 2 + segmentLength;
  }
  return undefined;
}
