import type { Page } from '@kura/schema';
import { AppError } from '../errors/app-error.js';

/** Cursors are opaque to clients: the last id of a page, base64url-encoded. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[a-z]+_[0-9a-f]+$/.test(id)) {
    throw new AppError({
      code: 'INVALID_CURSOR',
      kind: 'invalid',
      message: 'cursor is not one this server issued',
      location: { field: 'cursor' },
    });
  }
  return id;
}

/** Turns `limit + 1` rows ordered by id into a page (the extra row only says a next page exists). */
export function toPage<Row extends { id: string }, Item>(rows: Row[], limit: number, toItem: (row: Row) => Item): Page<Item> {
  const pageRows = rows.slice(0, limit);
  const last = pageRows[pageRows.length - 1];
  return { items: pageRows.map(toItem), nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}
