// A child for the jail's tests: does what its first argument names, reporting on the message channel.
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { writeSync } from 'node:fs';

const send = (message) => writeSync(3, `${JSON.stringify(message)}\n`);
const [behaviour, argument] = process.argv.slice(2);

const behaviours = {
  read: () => {
    try {
      send({ read: readFileSync(argument, 'utf8') });
    } catch (error) {
      send({ error: error.code });
    }
  },
  write: () => {
    try {
      writeFileSync(argument, 'written');
      send({ wrote: true });
    } catch (error) {
      send({ error: error.code });
    }
  },
  environment: () => send({ environment: process.env, uid: process.getuid() }),
  connect: () =>
    new Promise((resolve) => {
      const socket = connect(Number(argument), '127.0.0.1');
      socket.once('connect', () => {
        send({ connected: true });
        socket.destroy();
        resolve();
      });
      socket.once('error', (error) => {
        send({ error: error.code });
        resolve();
      });
    }),
  echo: async () => {
    const { createInterface } = await import('node:readline');
    for await (const line of createInterface({ input: process.stdin })) {
      const message = JSON.parse(line);
      if (message.stop) break;
      send({ echo: message });
    }
    process.exit(0);
  },
  'allocate-buffers': () => {
    const kept = [];
    for (;;) kept.push(Buffer.alloc(64 << 20, 1));
  },
  'allocate-heap': () => {
    const kept = [];
    for (;;) kept.push(Array.from({ length: 1e6 }, (_, index) => ({ index })));
  },
  spin: () => {
    for (;;);
  },
  sleep: () => new Promise((resolve) => setTimeout(resolve, 60_000)),
  'write-big-file': () => writeFileSync(argument, Buffer.alloc(4 << 20, 1)),
  'huge-message': () => writeSync(3, 'x'.repeat(Number(argument))),
  exit: () => process.exit(Number(argument)),
};

await behaviours[behaviour]();
