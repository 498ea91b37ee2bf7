import type { Page } from '@kura/schema';
import { invalidCursor } from './common.errors.js';

/** Cursors are opaque to clients: the last key of a page (an id, or a number), base64url-encoded. */
export function encodeCursor(lastKey: string | number): string {
  return Buffer.from(String(lastKey), 'utf8').toString('base64url');
}

/**
 * The key a cursor encodes, refused unless it is exactly what encodeCursor writes: Node's base64
 * decoder skips characters it does not know, so `{}` or `5` would otherwise decode to "" and start
 * the list from its beginning as if no cursor had been given.
 */
function decodeKey(cursor: string): string {
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (key === '' || encodeCursor(key) !== cursor) throw invalidCursor();
  return key;
}

/**
 * The id a cursor of an id-ordered list stands for. `kind` is the list's id prefix (`ds`, `rbt`…):
 * a cursor of another list (a robot id given to the datasets list) is refused, not followed.
 */
export function decodeCursor(cursor: string | undefined, kind: string): string | undefined {
  if (cursor === undefined) return undefined;
  const id = decodeKey(cursor);
  if (!/^[a-z]+_[0-9a-f]+$/.test(id) || !id.startsWith(`${kind}_`)) throw invalidCursor();
  return id;
}

/** The number a cursor of a number-ordered list (versions, episode indices) stands for. */
export function decodeNumberCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  const key = decodeKey(cursor);
  const value = Number(key);
  // Digits only, as encodeCursor writes a non-negative integer: not "1e3", " 7", "0x10" or "-0".
  if (!/^(0|[1-9][0-9]*)$/.test(key) || !Number.isSafeInteger(value)) throw invalidCursor();
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
