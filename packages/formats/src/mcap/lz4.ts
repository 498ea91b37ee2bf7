import { createRequire } from 'node:module';

/**
 * lz4js (LZ4 frame format, as MCAP chunks hold it), typed here: the package ships no types, and a
 * declaration file would not reach every project that compiles this folder.
 */
export const lz4 = createRequire(import.meta.url)('lz4js') as {
  decompress(data: Uint8Array, maxSize?: number): Uint8Array;
  compress(data: Uint8Array): Uint8Array;
};
