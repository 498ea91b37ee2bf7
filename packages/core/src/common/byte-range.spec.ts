import { describe, expect, it } from '@jest/globals';
import { AppError } from '../errors/app-error.js';
import { parseRange, resolveRange } from './byte-range.js';

const span = (header: string, size: number) => resolveRange(parseRange(header), size, header);
const codeOf = (work: () => unknown): string => {
  try {
    work();
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
  throw new Error('expected an AppError');
};

describe('byte ranges (RFC 9110 Range: one bytes= range)', () => {
  it('resolves first-last, first- and -suffix, clamping to the size', () => {
    expect(span('bytes=0-99', 1000)).toEqual({ start: 0, end: 99 });
    expect(span('bytes=900-', 1000)).toEqual({ start: 900, end: 999 });
    expect(span('bytes=900-5000', 1000)).toEqual({ start: 900, end: 999 });
    expect(span('bytes=-100', 1000)).toEqual({ start: 900, end: 999 });
    expect(span('bytes=-5000', 1000)).toEqual({ start: 0, end: 999 });
    expect(span(' bytes=0-0 ', 1)).toEqual({ start: 0, end: 0 });
  });

  it.each(['bytes=a-b', 'bytes=5-2', 'bytes=-', 'items=0-1', 'bytes=0-1,4-5'])('refuses %s as INVALID_RANGE', (header) => {
    expect(codeOf(() => parseRange(header))).toBe('INVALID_RANGE');
  });

  it('is RANGE_NOT_SATISFIABLE past the end, for an empty suffix and for an empty file', () => {
    expect(codeOf(() => span('bytes=1000-', 1000))).toBe('RANGE_NOT_SATISFIABLE');
    expect(codeOf(() => span('bytes=-0', 1000))).toBe('RANGE_NOT_SATISFIABLE');
    expect(codeOf(() => span('bytes=-10', 0))).toBe('RANGE_NOT_SATISFIABLE');
  });
});
