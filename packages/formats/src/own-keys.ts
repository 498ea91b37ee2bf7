/**
 * `table[key]` when `key` is one of the table's own keys, else undefined: a name taken from an upload
 * (`constructor`, `toString`, `__proto__`) must not find what Object.prototype holds.
 */
export function lookup<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

/** Sets `record[key]` as an own property whatever the key (`record.__proto__ = …` would replace the prototype instead). */
export function setOwn(record: Record<string, unknown>, key: string, value: unknown): void {
  // Of Object.prototype's names only `__proto__` is an accessor; assigning any other makes an own
  // data property, and is much cheaper (this runs for every feature of every episode).
  if (key === '__proto__') Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  else record[key] = value;
}
