import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { deployPolicy } from '../../../../test/support/policies.js';
import { createDataset } from '../../../../test/support/datasets.js';

const bin = (text: string) => Buffer.from(text, 'utf8');
// What a Python client's msgpack does: maps stay maps, whatever their keys.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });

/** A numpy array exactly as openpi's msgpack_numpy packs it: a map with bin keys. */
function ndarray(values: Float32Array | Uint8Array, dtype: '<f4' | '|u1', shape: number[]): Map<Buffer, unknown> {
  return new Map<Buffer, unknown>([
    [bin('__ndarray__'), true],
    [bin('data'), Buffer.from(values.buffer, values.byteOffset, values.byteLength)],
    [bin('dtype'), dtype],
    [bin('shape'), shape],
  ]);
}

/** A frame the module's test policy answers: its state and a 2×2 image. */
const goodFrame = (value: number) =>
  new Map<Buffer, unknown>([
    [bin('observation/state'), ndarray(Float32Array.of(value, 2), '<f4', [2])],
    [bin('observation/image'), ndarray(new Uint8Array(12), '|u1', [2, 2, 3])],
  ]);

/** A reply with its maps as objects, bin keys marked `bin:` (a Python client sees them as bytes). */
const unpack = (data: Buffer) => marked(unpackr.unpack(data)) as Record<string, unknown>;
function marked(value: unknown): unknown {
  if (!(value instanceof Map)) return value;
  return Object.fromEntries(
    [...(value as Map<unknown, unknown>)].map(([key, item]) => [
      Buffer.isBuffer(key) ? `bin:${key.toString('utf8')}` : String(key),
      marked(item),
    ]),
  );
}

describe('GET /v1/sessions/:id/ws (openpi policy-server protocol)', () => {
  let kura: TestApp;
  let user: { id: string; key: string };
  let url: string;
  let policyId: string;
  let datasetId: string;
  let operatorKey: string;
  let developerKey: string;

  beforeAll(async () => {
    kura = await startTestApp();
    await kura.app.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${(kura.app.getHttpServer().address() as AddressInfo).port}`;
    const operator = await kura.createKey('operator');
    operatorKey = operator.key;
    const developer = await kura.createKey('developer');
    developerKey = developer.key;
    user = await kura.createKey('user');
    policyId = await deployPolicy(kura, developer.key, {
      'policy.json': JSON.stringify({
        name: 'ws',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state', 'observation.image'],
        observationShapes: { 'observation.state': [2] },
        action: { shape: [2, 2] },
      }),
      // Answers with the state and the image's byte count, so the test sees both arrived.
      'policy.js':
        'function act(o, c) { const s = o["observation.state"]; return [[s[0], s[1]], [o["observation.image"].length > 8 ? 1 : 0, c.task === "fold" ? 1 : 0]]; }',
    });
    datasetId = await createDataset(kura, operator.key, 'private');
    await kura.request.post(`/v1/datasets/${datasetId}/grants`).set(bearer(operator.key)).send({ keyId: user.id });
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  const openSession = async () =>
    (await kura.request.post('/v1/sessions').set(bearer(user.key)).send({ policyId, datasetId })).body.id as string;
  const connect = (sessionId: string, authorization = `Api-Key ${user.key}`) =>
    new Promise<{ socket: WebSocket; metadata: Record<string, unknown> }>((resolve, reject) => {
      const socket = new WebSocket(`${url}/v1/sessions/${sessionId}/ws`, { headers: { Authorization: authorization } });
      socket.once('message', (data) => resolve({ socket, metadata: unpack(data as Buffer) }));
      socket.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
      socket.once('error', reject);
    });
  const next = (socket: WebSocket) =>
    new Promise<{ data: Buffer; isBinary: boolean }>((resolve) =>
      socket.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary })),
    );

  it('sends metadata, answers openpi frames (bin keys, raw images, prompt) with actions, and records the steps', async () => {
    const sessionId = await openSession();
    const { socket, metadata } = await connect(sessionId);
    expect(metadata).toMatchObject({ session_id: sessionId, policy_id: policyId, action_shape: [2, 2] });
    const pixels = new Uint8Array(4 * 4 * 3).fill(128);
    for (let step = 0; step < 3; step++) {
      const frame = new Map<Buffer | string, unknown>([
        [bin('observation/state'), ndarray(Float32Array.of(step, 0.5), '<f4', [2])],
        [bin('observation/image'), ndarray(pixels, '|u1', [4, 4, 3])],
        [bin('observation/unused'), ndarray(Float32Array.of(1), '<f4', [1])],
        ['prompt', 'fold'],
      ]);
      const reply = next(socket);
      socket.send(packr.pack(frame));
      const { data, isBinary } = await reply;
      expect(isBinary ? 'binary' : data.toString()).toBe('binary');
      const message = unpack(data);
      const actions = message.actions as Record<string, unknown>;
      // msgpack_numpy's own layout: the keys are bin, the dtype a str, the data float32 bytes.
      expect(actions['bin:__ndarray__']).toBe(true);
      expect(actions['bin:dtype']).toBe('<f4');
      expect(actions['bin:shape']).toEqual([2, 2]);
      const data32 = new Float32Array(new Uint8Array(actions['bin:data'] as Uint8Array).buffer);
      expect(Array.from(data32)).toEqual([step, 0.5, 1, 1]);
      expect((message.server_timing as { infer_ms: number }).infer_ms).toBeGreaterThan(0);
    }
    socket.close();
    const session = (await kura.request.get(`/v1/sessions/${sessionId}`).set(bearer(user.key))).body;
    expect(session).toMatchObject({ status: 'open', stepCount: 3, task: 'fold' });
  });

  it('answers a frame that is not msgpack with a FRAME_INVALID text frame and keeps the socket open', async () => {
    const { socket } = await connect(await openSession(), `Bearer ${user.key}`);
    const reply = next(socket);
    socket.send(Buffer.from('not msgpack at all \xc1'));
    const { data, isBinary } = await reply;
    expect(isBinary).toBe(false);
    expect(data.toString()).toMatch(/^FRAME_INVALID/);
    const good = next(socket);
    socket.send(packr.pack(goodFrame(1)));
    expect((await good).isBinary).toBe(true);
    socket.close();
  });

  it('refuses arrays whose shape disagrees with their bytes or the session’s feature, records none of them, and stays usable', async () => {
    // No observationShapes: the session's first step says what a step holds.
    const free = await deployPolicy(kura, developerKey, {
      'policy.json': JSON.stringify({
        name: 'ws-free',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state', 'observation.image'],
        action: { shape: [2] },
      }),
      'policy.js': 'function act(o) { return [o["observation.state"].length, o["observation.image"].length]; }',
    });
    // A dataset of its own: the episode this session becomes sets its features.
    const ownDataset = await createDataset(kura, operatorKey, 'private');
    await kura.request.post(`/v1/datasets/${ownDataset}/grants`).set(bearer(operatorKey)).send({ keyId: user.id });
    const sessionId = (await kura.request.post('/v1/sessions').set(bearer(user.key)).send({ policyId: free, datasetId: ownDataset })).body
      .id as string;
    const { socket } = await connect(sessionId);
    const send = async (frame: Map<Buffer | string, unknown>) => {
      const reply = next(socket);
      socket.send(packr.pack(frame));
      const { data, isBinary } = await reply;
      return isBinary ? 'answered' : data.toString();
    };
    const image = (height: number, width: number) => ndarray(new Uint8Array(height * width * 3).fill(9), '|u1', [height, width, 3]);
    const frame = (state: unknown, pixels: unknown = image(4, 4)) =>
      new Map<Buffer, unknown>([
        [bin('observation/state'), state],
        [bin('observation/image'), pixels],
      ]);
    expect(await send(frame(ndarray(Float32Array.of(1, 2), '<f4', [2])))).toBe('answered');
    const seven = Float32Array.of(1, 2, 3, 4, 5, 6, 7);
    const refusals = [
      frame(ndarray(seven, '<f4', [1e9])),
      frame(ndarray(seven, '<f4', [-7])),
      frame(ndarray(seven, '<f4', [7, 0.5])),
      frame(ndarray(seven, '<f4', [1, 1, 1, 1, 1, 1, 1, 1, 7])),
      // 20,000×3 uint8 as the state: its bytes agree with its shape, but the session's state holds 2 numbers.
      frame(ndarray(new Uint8Array(60_000), '|u1', [20_000, 3])),
      frame(ndarray(Float32Array.of(1, 2), '<f4', [2]), image(2, 2)),
    ];
    for (const refused of refusals) expect(await send(refused)).toMatch(/^FRAME_INVALID: observation\/(state|image): /);
    // The prompt becomes the session's task: text Postgres cannot store is refused too.
    const withPrompt = frame(ndarray(Float32Array.of(1, 2), '<f4', [2]));
    expect(await send(new Map<Buffer | string, unknown>([...withPrompt, ['prompt', 'fold\u0000']]))).toMatch(/^FRAME_INVALID: prompt: /);
    expect(await send(frame(ndarray(Float32Array.of(3, 4), '<f4', [2])))).toBe('answered');
    socket.close();

    const session = (await kura.request.get(`/v1/sessions/${sessionId}`).set(bearer(user.key))).body;
    expect(session.stepCount).toBe(2);
    const ended = await kura.request.post(`/v1/sessions/${sessionId}/end`).set(bearer(user.key)).send({});
    const upload = await eventually(async () => {
      const response = await kura.request.get(`/v1/uploads/${ended.body.uploadId}`).set(bearer(operatorKey));
      return ['published', 'failed'].includes(response.body.status) ? response.body : undefined;
    }, 30_000);
    expect(upload).toMatchObject({ status: 'published', episodeCount: 1, stepCount: 2, errors: [] });
  });

  it('closes with 1009 on a frame over 16 MiB, and keeps serving others', async () => {
    const sessionId = await openSession();
    const { socket } = await connect(sessionId);
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.on('error', () => undefined);
    socket.send(Buffer.alloc(16 * 1024 * 1024 + 1));
    expect(await closed).toBe(1009);
    // The process is alive and the session usable: a new connection steps normally.
    const again = await connect(sessionId);
    const reply = next(again.socket);
    again.socket.send(
      packr.pack(
        new Map<Buffer, unknown>([
          [bin('observation/state'), ndarray(Float32Array.of(1, 2), '<f4', [2])],
          [bin('observation/image'), ndarray(new Uint8Array(12), '|u1', [2, 2, 3])],
        ]),
      ),
    );
    expect((await reply).isBinary).toBe(true);
    again.socket.close();
    expect((await kura.request.get(`/v1/sessions/${sessionId}`).set(bearer(user.key))).body.stepCount).toBe(1);
  });

  it('answers a frame past the key’s quota with QUOTA_EXCEEDED and close 1011, and a text frame with FRAME_INVALID', async () => {
    const limited = await kura.request
      .post('/v1/keys')
      .set(bearer(kura.adminKey))
      .send({ name: 'ws quota', role: 'user', quota: { stepsPerDay: 1 } });
    await kura.request.post(`/v1/datasets/${datasetId}/grants`).set(bearer(operatorKey)).send({ keyId: limited.body.id });
    const sessionId = (await kura.request.post('/v1/sessions').set(bearer(limited.body.key)).send({ policyId, datasetId })).body.id;
    const { socket } = await connect(sessionId, `Api-Key ${limited.body.key}`);
    const frame = packr.pack(
      new Map<Buffer, unknown>([
        [bin('observation/state'), ndarray(Float32Array.of(1, 2), '<f4', [2])],
        [bin('observation/image'), ndarray(new Uint8Array(12), '|u1', [2, 2, 3])],
      ]),
    );
    const first = next(socket);
    socket.send(frame);
    expect((await first).isBinary).toBe(true);
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    const second = next(socket);
    socket.send(frame);
    const { data, isBinary } = await second;
    expect(isBinary).toBe(false);
    expect(data.toString()).toMatch(/^QUOTA_EXCEEDED: .*stepsPerDay/);
    expect(await closed).toBe(1011);

    const text = await connect(await openSession());
    const textReply = next(text.socket);
    text.socket.send('{"observation": {}}');
    expect((await textReply).data.toString()).toMatch(/^FRAME_INVALID/);
    expect(text.socket.readyState).toBe(WebSocket.OPEN);
    text.socket.close();
  });

  it('refuses connections to ended sessions (409), and to another key’s ended session as unknown (404)', async () => {
    const sessionId = await openSession();
    expect((await kura.request.post(`/v1/sessions/${sessionId}/end`).set(bearer(user.key)).send({})).status).toBe(200);
    await expect(connect(sessionId)).rejects.toThrow('HTTP 409');
    const stranger = await kura.createKey('user');
    await expect(connect(sessionId, `Bearer ${stranger.key}`)).rejects.toThrow('HTTP 404');
  });

  it('refuses connections without a key, to unknown sessions, and to other keys’ sessions', async () => {
    const sessionId = await openSession();
    await expect(connect(sessionId, '')).rejects.toThrow('HTTP 401');
    await expect(connect('ses_000000000000aaaaaaaaaaaa')).rejects.toThrow('HTTP 404');
    const stranger = await kura.createKey('user');
    await expect(connect(sessionId, `Bearer ${stranger.key}`)).rejects.toThrow('HTTP 404');
  });
});
