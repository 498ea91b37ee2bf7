import { open, type FileHandle } from 'node:fs/promises';

/** NumPy's name of each Kura numeric dtype as stored (little-endian; bools one byte each). */
export const npyDescr = {
  float32: '<f4',
  float64: '<f8',
  int8: '|i1',
  int16: '<i2',
  int32: '<i4',
  int64: '<i8',
  uint8: '|u1',
  uint16: '<u2',
  uint32: '<u4',
  bool: '|b1',
} as const;
export type NpyDtype = keyof typeof npyDescr;

/**
 * Bytes kept for the header. The row count is known only at the end, so the header is written
 * last over this space: 256 bytes hold any shape Kura allows (rank 8, dimensions ≤ 1,000,000).
 */
const HEADER_BYTES = 256;
const FLUSH_BYTES = 1 << 20;
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00]); // \x93NUMPY v1.0

/** The .npy header (format 1.0) for an array of `rows` rows of `rowShape`, padded to `HEADER_BYTES`. */
export function npyHeader(descr: string, rows: number, rowShape: readonly number[]): Buffer {
  const dims = [rows, ...rowShape];
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const room = HEADER_BYTES - MAGIC.length - 2;
  if (dict.length + 1 > room) throw new Error(`an .npy header for shape ${shape} does not fit in ${HEADER_BYTES} bytes`);
  const text = Buffer.alloc(room, 0x20);
  text.write(dict, 'latin1');
  text[room - 1] = 0x0a;
  const length = Buffer.alloc(2);
  length.writeUInt16LE(room);
  return Buffer.concat([MAGIC, length, text]);
}

/**
 * Writes one NumPy `.npy` file as rows arrive, so a training set streams to disk: rows are copied
 * into a buffer of its own (~1 MiB) and written when it fills, so memory is flat whatever the
 * dataset's size and no caller's buffer is kept alive. The header (with the final row count) is
 * written over its reserved space at close.
 */
export class NpyWriter {
  /** Whole rows only, so that each flush hands `onFlush` whole rows. */
  private readonly buffer: Buffer;
  private buffered = 0;
  private position = HEADER_BYTES;
  private rows = 0;
  private readonly rowBytes: number;

  private constructor(
    private readonly file: FileHandle,
    private readonly descr: string,
    private readonly rowShape: readonly number[],
    itemBytes: number,
    private readonly onFlush: ((rows: Uint8Array) => Promise<void>) | undefined,
  ) {
    this.rowBytes = rowShape.reduce((product, dimension) => product * dimension, itemBytes);
    this.buffer = Buffer.allocUnsafe(Math.max(1, Math.floor(FLUSH_BYTES / this.rowBytes)) * this.rowBytes);
  }

  /** `onFlush` sees each run of rows before it is written (whole rows; copy them to keep them). */
  static async create(
    path: string,
    dtype: NpyDtype,
    rowShape: readonly number[],
    onFlush?: (rows: Uint8Array) => Promise<void>,
  ): Promise<NpyWriter> {
    const descr = npyDescr[dtype];
    return new NpyWriter(await open(path, 'wx', 0o644), descr, rowShape, Number(descr.slice(2)), onFlush);
  }

  /** Appends whole rows: `values` holds rows × row size numbers of the writer's dtype (bools as 0/1 bytes). */
  async append(values: ArrayBufferView): Promise<void> {
    if (values.byteLength % this.rowBytes !== 0)
      throw new Error(`${values.byteLength} bytes are not whole rows of ${this.rowBytes} bytes (${this.descr} ${this.rowShape.join('×')})`);
    this.rows += values.byteLength / this.rowBytes;
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    for (let copied = 0; copied < bytes.length;) {
      const length = Math.min(bytes.length - copied, this.buffer.length - this.buffered);
      this.buffer.set(bytes.subarray(copied, copied + length), this.buffered);
      this.buffered += length;
      copied += length;
      if (this.buffered === this.buffer.length) await this.flush();
    }
  }

  async close(): Promise<{ rows: number; bytes: number }> {
    try {
      await this.flush();
      await this.file.write(npyHeader(this.descr, this.rows, this.rowShape), 0, HEADER_BYTES, 0);
    } finally {
      await this.file.close();
    }
    return { rows: this.rows, bytes: this.position };
  }

  /** Closes without completing the file (a failed materialisation removes its folder). */
  async abandon(): Promise<void> {
    this.buffered = 0;
    await this.file.close().catch(() => undefined);
  }

  private async flush(): Promise<void> {
    if (this.buffered === 0) return;
    await this.onFlush?.(this.buffer.subarray(0, this.buffered));
    await this.file.write(this.buffer, 0, this.buffered, this.position);
    this.position += this.buffered;
    this.buffered = 0;
  }
}
