// A body refused while it is still arriving (413 on its declared length) must not cost the client
// its answer: the server keeps reading and dropping the rest instead of closing, also when the
// request said `Connection: close`. Closing right after the answer made the client's next write
// fail (EPIPE, then a reset that can drop the unread 413): 4 in 120 such uploads did, before.
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../../../../test/support/app.js';

describe('a body refused while it arrives', () => {
  let kura: TestApp;
  let port: number;

  beforeAll(async () => {
    kura = await startTestApp();
    await kura.app.listen(0, '127.0.0.1');
    port = (kura.app.getHttpServer().address() as AddressInfo).port;
  });
  afterAll(async () => {
    await kura.close();
  });

  it('is answered 413 and read to its end, with Connection: close, so the client can send it all and read the answer', async () => {
    const declared = kura.config.http.jsonBodyLimit * 2;
    const socket: Socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    let writeError: Error | undefined;
    socket.on('error', (error) => (writeError = error));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));

    socket.write(
      [
        'POST /v1/robots HTTP/1.1',
        'Host: 127.0.0.1',
        `Authorization: Bearer ${kura.adminKey}`,
        'Content-Type: application/json',
        `Content-Length: ${declared}`,
        'Connection: close',
        '',
        '',
      ].join('\r\n'),
    );
    socket.write(Buffer.alloc(64 * 1024, 0x20));
    // The answer comes before the body is all sent.
    for (let waited = 0; !Buffer.concat(received).includes('\r\n\r\n') && waited < 5000; waited += 20)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(Buffer.concat(received).toString('latin1')).toMatch(/^HTTP\/1\.1 413 /);
    // Then the rest, in pieces, with pauses: a server that closed would make these writes fail.
    for (let sent = 64 * 1024; sent < declared; sent += 64 * 1024) {
      await new Promise<void>((resolve) => socket.write(Buffer.alloc(Math.min(64 * 1024, declared - sent), 0x20), () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(writeError).toBeUndefined();
    expect(socket.destroyed).toBe(false);
    socket.end();
    await closed;
    const answer = Buffer.concat(received).toString('utf8');
    expect(answer).toContain('"code":"PAYLOAD_TOO_LARGE"');
  });
});
