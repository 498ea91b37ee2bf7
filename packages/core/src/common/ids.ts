import { randomBytes } from 'node:crypto';

/**
 * A new opaque id such as `ds_0193f2c4a1b2_9f8e7d6c5b4a`: a prefix naming the kind, milliseconds
 * since the epoch in hex (so ids sort by creation, which keeps cursor pagination stable), and 48
 * random bits.
 */
export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(16).padStart(12, '0')}${randomBytes(6).toString('hex')}`;
}
