import type { Page } from '@kura/schema';
import { AppError } from '../errors/app-error.js';

const invalidCursor = () =>
  new AppError({ code: 'INVALID_CURSOR', kind: 'invalid', message: 'cursor is not one this server issued', location: { field: 'cursor' } });

/** Cursors are opaque to clients: the last key of a page (an id, or a number), base64url-encoded. */
export function encodeCursor(lastKey: string | number): string {
  return Buffer.from(String(lastKey), 'utf8').toString('base64url');
}

/** The id a cursor of an id-ordered list stands for. */
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[a-z]+_[0-9a-f]+$/.test(id)) throw invalidCursor();
  return id;
}

/** The number a cursor of a number-ordered list (versions, episode indices) stands for. */
export function decodeNumberCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  const value = Number(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!Number.isInteger(value) || value < 0) throw invalidCursor();
  return value;
}

/**
 * Turns `limit + 1` rows ordered by their key into a page (the extra row only says a next page
 * exists). The key is the row's id unless `keyOf` says otherwise.
 */
export function toPage<Row extends { id: string }, Item>(rows: Row[], limit: number, toItem: (row: Row) => Item): Page<Item>;
export function toPage<Row, Item>(rows: Row[], limit: number, toItem: (row: Row) => Item, keyOf: (row: Row) => string | number): Page<Item>;
export function toPage<Row, Item>(
  rows: Row[],
  limit: number,
  toItem: (row: Row) => Item,
  keyOf?: (row: Row) => string | number,
): Page<Item> {
  const pageRows = rows.slice(0, limit);
  const last = pageRows[pageRows.length - 1];
  // Without keyOf, the first overload guarantees rows with an id.
  const key = keyOf ?? ((row: Row) => (row as { id: string }).id);
  return { items: pageRows.map(toItem), nextCursor: rows.length > limit && last !== undefined ? encodeCursor(key(last)) : null };
}
