import { invalidRange, rangeNotSatisfiable } from './common.errors.js';

/** One `bytes=` range of a `Range` header (RFC 9110 §14.1.2): first-last, first-, or -suffixLength. */
export type RequestedRange = { first: number; last: number | undefined } | { suffix: number };

/** Parses a `Range` header; one range only (several are INVALID_RANGE, as is anything malformed). */
export function parseRange(header: string): RequestedRange {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) {
    throw invalidRange(header, header.includes(',') ? 'several ranges are not supported' : 'expected "bytes=<first>-<last>"');
  }
  const [, first, last] = match;
  if (first === '' && last === '') throw invalidRange(header, 'no position given');
  if (first === '') return { suffix: Number(last) };
  const range = { first: Number(first), last: last === '' ? undefined : Number(last) };
  if (range.last !== undefined && range.last < range.first) throw invalidRange(header, 'the last byte is before the first');
  return range;
}

/** The inclusive span a range selects in `size` bytes; RANGE_NOT_SATISFIABLE when it starts past the end. */
export function resolveRange(range: RequestedRange, size: number, header: string): { start: number; end: number } {
  if ('suffix' in range) {
    if (range.suffix === 0 || size === 0) throw rangeNotSatisfiable(header, size);
    return { start: Math.max(0, size - range.suffix), end: size - 1 };
  }
  if (range.first >= size) throw rangeNotSatisfiable(header, size);
  return { start: range.first, end: Math.min(size - 1, range.last ?? size - 1) };
}

/** Whether an If-None-Match header names this ETag (or `*`): the client's copy is current (304). */
export function ifNoneMatchHits(ifNoneMatch: string | undefined, etag: string): boolean {
  return ifNoneMatch !== undefined && ifNoneMatch.split(',').some((tag) => tag.trim() === etag || tag.trim() === '*');
}
