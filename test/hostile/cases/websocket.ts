// WebSocket (openpi's protocol on a session): frames that are not msgpack, arrays whose shape and
// bytes disagree or do not fit the feature, negative and absurd shapes, text frames, frames over the
// 16 MiB limit. A bad frame is answered FRAME_INVALID and recorded nowhere, and the socket stays
// usable: the next good frame is answered and recorded. A frame over the limit closes with 1009.
import type { HostileCase } from '../corpus.js';
import { bin, float32Bytes, goodFrame, ndarray, packr, SessionSocket, type Reception } from './sockets.js';

const MiB = 1024 * 1024;
/** What every refused frame must lead to: refused, the socket still answers, only the good frame recorded. */
const REFUSED = 'FRAME_INVALID, then answered, 1 recorded';

const describe = (reception: Reception): string => {
  if (reception.kind === 'binary') return 'answered';
  if (reception.kind === 'closed') return `closed ${reception.detail}`;
  return reception.detail.split(':')[0] ?? reception.detail;
};

/** A frame of the image policy with `state` (and `image`) as given. */
const frameWith = (entries: Record<string, unknown>) =>
  new Map<Buffer | string, unknown>(Object.entries(entries).map(([key, value]) => [bin(key), value]));
const image = () => ndarray(new Uint8Array(12), '|u1', [2, 2, 3]);

function socketCase(name: string, expect: string, frame: () => Buffer | string, options: { text?: boolean } = {}): HostileCase {
  return {
    family: 'websocket',
    name: `websocket/${name}`,
    expect,
    async run({ client, world }) {
      const sessionId = await world.newSession(client);
      const socket = await SessionSocket.open(client, sessionId, `Bearer ${world.keys.userA.key}`);
      if (typeof socket === 'string') return `refused: ${socket}`;
      try {
        socket.send(frame(), !options.text);
        const first = describe(await socket.next());
        let outcome = first;
        if (!first.startsWith('closed')) {
          socket.send(packr.pack(goodFrame(1)));
          outcome += `, then ${describe(await socket.next())}`;
        }
        const session = await client.get(`/v1/sessions/${sessionId}`, { key: world.keys.userA.key });
        return `${outcome}, ${String(session.body?.stepCount)} recorded`;
      } finally {
        socket.close();
        // An open session keeps its own policy instance (an isolate) in the api: ended, it is let go,
        // so the run's memory check measures what hostile frames leave behind, not live sessions.
        await client.post(`/v1/sessions/${sessionId}/end`, { key: world.keys.userA.key, json: {} });
      }
    },
  };
}

/** A frame whose state is `state` (an ndarray or anything else) next to a good image. */
const stateFrame = (state: unknown) => () => packr.pack(frameWith({ 'observation/state': state, 'observation/image': image() }));

export function websocketCases(): HostileCase[] {
  return [
    socketCase('good-frame-control', 'answered, then answered, 2 recorded', () => packr.pack(goodFrame(0))),
    socketCase('not-msgpack', REFUSED, () => Buffer.from([0xc1, 0xc1, 0xc1, 0x00, 0xff])),
    socketCase('msgpack-string', REFUSED, () => packr.pack('observation')),
    socketCase('msgpack-array', REFUSED, () => packr.pack([1, 2, 3])),
    socketCase('msgpack-nil', REFUSED, () => packr.pack(null)),
    socketCase('empty-binary-frame', REFUSED, () => Buffer.alloc(0)),
    socketCase('text-frame', REFUSED, () => JSON.stringify({ 'observation/state': [0, 0] }), { text: true }),
    socketCase('map-header-of-4-billion-entries', REFUSED, () => Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x61])),
    socketCase('string-header-of-4-GiB', REFUSED, () => Buffer.from([0x81, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x61])),
    socketCase('nesting-100k-deep', REFUSED, () =>
      Buffer.concat([Buffer.from([0x81, 0xa1, 0x78]), Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])]),
    ),
    socketCase('key-of-invalid-utf8', REFUSED, () =>
      packr.pack(
        new Map<Buffer, unknown>([
          [Buffer.from([0xc3, 0x28]), 1],
          [bin('observation/state'), ndarray(float32Bytes(0, 0), '<f4', [2])],
        ]),
      ),
    ),
    // #19 item 8: arrays whose shape disagrees with their bytes were answered and recorded.
    socketCase('shape-1e9-with-8-bytes', REFUSED, stateFrame(ndarray(float32Bytes(0, 0), '<f4', [1e9]))),
    socketCase('shape-negative', REFUSED, stateFrame(ndarray(float32Bytes(0, 0), '<f4', [-7]))),
    socketCase('shape-negative-pair', REFUSED, stateFrame(ndarray(float32Bytes(0, 0), '<f4', [-1, -2]))),
    socketCase('shape-fractional', REFUSED, stateFrame(ndarray(float32Bytes(0, 0), '<f4', [2.5]))),
    socketCase('shape-2^53', REFUSED, stateFrame(ndarray(float32Bytes(0, 0), '<f4', [2 ** 53]))),
    socketCase('shape-of-rank-9', REFUSED, stateFrame(ndarray(float32Bytes(0, 0), '<f4', [1, 1, 1, 1, 1, 1, 1, 1, 2]))),
    socketCase('shape-as-text', REFUSED, stateFrame(ndarray(float32Bytes(0, 0), '<f4', '2'))),
    socketCase('dtype-complex', REFUSED, stateFrame(ndarray(float32Bytes(0, 0, 0, 0), '<c8', [2]))),
    socketCase('dtype-big-endian', REFUSED, stateFrame(ndarray(float32Bytes(0, 0), '>f4', [2]))),
    socketCase('dtype-object', REFUSED, stateFrame(ndarray(float32Bytes(0, 0), '|O', [2]))),
    socketCase(
      'data-as-text',
      REFUSED,
      stateFrame(
        new Map<Buffer, unknown>([
          [bin('__ndarray__'), true],
          [bin('data'), 'AAAA'],
          [bin('dtype'), '<f4'],
          [bin('shape'), [1]],
        ]),
      ),
    ),
    // #19 item 8: 20,000 × 3 uint8 sent as the state was recorded, and the episode lost at the end.
    socketCase('image-sent-as-the-state', REFUSED, stateFrame(ndarray(new Uint8Array(60_000), '|u1', [20_000, 3]))),
    socketCase('state-of-the-wrong-width', REFUSED, stateFrame(ndarray(float32Bytes(0, 0, 0), '<f4', [3]))),
    socketCase('state-nan', REFUSED, stateFrame(ndarray(float32Bytes(Number.NaN, 0), '<f4', [2]))),
    socketCase('state-missing', REFUSED, () => packr.pack(frameWith({ 'observation/image': image() }))),
    socketCase('image-of-no-pixels', REFUSED, () =>
      packr.pack(
        frameWith({
          'observation/state': ndarray(float32Bytes(0, 0), '<f4', [2]),
          'observation/image': ndarray(new Uint8Array(0), '|u1', [0, 0, 3]),
        }),
      ),
    ),
    socketCase('image-bytes-short', REFUSED, () =>
      packr.pack(
        frameWith({
          'observation/state': ndarray(float32Bytes(0, 0), '<f4', [2]),
          'observation/image': ndarray(new Uint8Array(11), '|u1', [2, 2, 3]),
        }),
      ),
    ),
    socketCase('prompt-with-nul', REFUSED, () => {
      const frame = goodFrame(1);
      frame.set(bin('prompt'), 'fold\u0000');
      return packr.pack(frame);
    }),
    socketCase('100k-unused-keys', 'answered, then answered, 2 recorded', () => {
      const frame = goodFrame(1) as Map<Buffer | string, unknown>;
      for (let index = 0; index < 100_000; index++) frame.set(`unused/${index}`, index);
      return packr.pack(frame);
    }),
    socketCase('frame-over-16-MiB', 'closed 1009, 0 recorded', () =>
      packr.pack(frameWith({ 'observation/state': ndarray(new Uint8Array(17 * MiB), '|u1', [17 * MiB]) })),
    ),
  ];
}
