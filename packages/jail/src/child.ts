import { createInterface } from 'node:readline';
import { writeSync } from 'node:fs';
import { JAIL_MESSAGE_FD } from './jail.js';
import { encodeFrame, FrameReader, type Frame } from './frames.js';

/**
 * The child's side of the channel: `send` writes one JSON line to the parent (synchronously, so a
 * message sent right before exiting is not lost), `messages` reads the parent's lines from stdin.
 */
export const jailChannel = {
  send(message: unknown): void {
    const line = Buffer.from(`${JSON.stringify(message)}\n`);
    for (let written = 0; written < line.length;) written += writeSync(JAIL_MESSAGE_FD, line, written);
  },

  /**
   * Exits when the parent is gone. bubblewrap's --die-with-parent does this at the `bwrap` level; at
   * `process` level nothing else would stop an orphan from working on (and writing into) a folder a
   * restarted parent is about to reuse.
   */
  exitWithParent(intervalMs = 500): void {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) process.exit(1);
    }, intervalMs).unref();
  },

  async *messages(): AsyncGenerator<unknown> {
    for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) if (line !== '') yield JSON.parse(line);
  },
};

/** The child's side of a `frames` channel (frames.ts): frames from stdin, frames to fd 3. */
export const jailFrames = {
  send(header: Record<string, unknown>, body?: Uint8Array): void {
    for (const part of encodeFrame(header, body))
      for (let written = 0; written < part.length;) written += writeSync(JAIL_MESSAGE_FD, part, written);
  },

  async *frames(maxBytes = 1024 * 1024 * 1024): AsyncGenerator<Frame> {
    const reader = new FrameReader(maxBytes);
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) yield* reader.push(chunk);
  },
};
