/** Height, width and channels of a JPEG or PNG image, read from its header (no decoding). */
export function imageShape(bytes: Uint8Array): [number, number, number] | undefined {
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes.length >= 26) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const colourType = bytes[25];
    const channels = colourType === 0 ? 1 : colourType === 2 ? 3 : colourType === 4 ? 2 : colourType === 6 ? 4 : 3;
    return [view.getUint32(20), view.getUint32(16), channels];
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    let offset = 2;
    while (offset + 9 < bytes.length) {
      if (bytes[offset] !== 0xff) return undefined;
      const marker = bytes[offset + 1]!;
      const segmentLength = (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
      // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return [(bytes[offset + 5]! << 8) | bytes[offset + 6]!, (bytes[offset + 7]! << 8) | bytes[offset + 8]!, bytes[offset + 9]!];
      }
      offset += 2 + segmentLength;
    }
  }
  return undefined;
}
