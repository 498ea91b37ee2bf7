import { describe, expect, it } from '@jest/globals';
import { decode } from 'fast-png';
import { encodePng } from './png.js';

describe('encodePng', () => {
  it.each([1, 2, 3, 4] as const)('round-trips %i-channel pixels exactly (checked with an independent decoder)', (channels) => {
    const width = 37;
    const height = 23;
    const pixels = new Uint8Array(width * height * channels);
    let state = 7;
    for (let index = 0; index < pixels.length; index++) pixels[index] = (state = (state * 1103515245 + 12345) >>> 0) >>> 24;
    const decoded = decode(encodePng({ pixels, width, height, channels }));
    expect([decoded.width, decoded.height, decoded.channels, decoded.depth]).toEqual([width, height, channels, 8]);
    expect(Buffer.from(decoded.data as Uint8Array).equals(Buffer.from(pixels))).toBe(true);
  });

  it('refuses a pixel buffer of the wrong size', () => {
    expect(() => encodePng({ pixels: new Uint8Array(10), width: 4, height: 4, channels: 3 })).toThrow('expected 48 bytes');
  });
});
