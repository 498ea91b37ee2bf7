// `npm run bench -- inference`: the cost of serving a trivial JS policy over HTTP and WebSocket,
// against calling the same sandboxed policy in this process, same run.
// - in-process: loadPolicyRuntime + act(), per-call times (the floor: the sandbox itself).
// - bare HTTP: a plain Node server in another process answering the same JSON POST (the HTTP floor).
// - HTTP act: POST /v1/policies/:id/act at a steady 200 requests/s (open loop), per-request times.
// - WebSocket: openpi-style clients (send a frame, wait for the reply) on sessions; steps/s with 1,
//   8 and 32 clients. Every step is recorded in Postgres before its reply.
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { loadPolicyRuntime } from '../packages/core/dist/policies/runtimes/policy-runtime.js';
import { cpuSeconds, deployPolicy, freePort, percentile, startScratchApi, STATE_DIMS, trivialPolicy } from './support.mjs';

const RATE_PER_S = 200;
const HTTP_REQUESTS = 3000;
const WS_SECONDS = 5;
const { script, manifest } = trivialPolicy;
const state = Array.from({ length: STATE_DIMS }, (_, index) => index / 10);
const body = JSON.stringify({ observation: { 'observation.state': state } });

async function inProcessCalls(count) {
  const runtime = await loadPolicyRuntime({ manifest, entry: Buffer.from(script) });
  const observation = { 'observation.state': state };
  for (let index = 0; index < 500; index++) await runtime.act(observation, { step: index });
  const times = [];
  for (let index = 0; index < count; index++) {
    const started = performance.now();
    await runtime.act(observation, { step: index });
    times.push(performance.now() - started);
  }
  runtime.dispose();
  return times;
}

/** POSTs `body` at a steady rate (not waiting for replies to send the next) and times each request. */
async function steadyPosts({ port, path, headers, count, ratePerS }) {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const post = () =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const outgoing = request(
        { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'Content-Type': 'application/json', ...headers } },
        (response) => {
          const chunks = [];
          response.on('data', (chunk) => chunks.push(chunk));
          response.on('end', () => {
            if (response.statusCode !== 200) reject(new Error(`${path}: ${response.statusCode} ${Buffer.concat(chunks)}`));
            else resolve(performance.now() - started);
          });
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  // Warm-up: connections, JIT, and the policy pool's instances (host processes, ~0.25 s to start
  // each; four calls at once load the four a policy may have), so the figures are the steady state.
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let index = 0; index < 50; index++) await post();
    }),
  );
  const intervalMs = 1000 / ratePerS;
  const begun = performance.now();
  const pending = [];
  for (let index = 0; index < count; index++) {
    const due = begun + index * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(post());
  }
  const times = await Promise.all(pending);
  agent.destroy();
  return { times, seconds: (performance.now() - begun) / 1000 };
}

/** A plain Node HTTP server in its own process: parses the JSON body and answers a small JSON. */
async function bareServer() {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      '-e',
      `require('node:http').createServer((q, s) => { const c = []; q.on('data', (d) => c.push(d)); q.on('end', () => { const o = JSON.parse(Buffer.concat(c)); s.setHeader('Content-Type', 'application/json'); s.end(JSON.stringify({ action: o.observation['observation.state'], latencyMs: 0 })); }); }).listen(${port}, '127.0.0.1', () => process.send('up'));`,
    ],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  await new Promise((resolve) => child.once('message', resolve));
  return { port, stop: () => child.kill() };
}

/** `clients` openpi-style WebSocket clients, each on its own session, stepping for `seconds`. */
async function webSocketSteps({ port, key, sessionIds, seconds, onStart }) {
  const packr = new Packr({ useRecords: false });
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });
  const bin = (text) => Buffer.from(text, 'utf8');
  const data = Buffer.from(Float32Array.from(state).buffer);
  const frame = packr.pack(
    new Map([
      [
        bin('observation/state'),
        new Map([
          [bin('__ndarray__'), true],
          [bin('data'), data],
          [bin('dtype'), '<f4'],
          [bin('shape'), [STATE_DIMS]],
        ]),
      ],
    ]),
  );
  const times = [];
  let steps = 0;
  let deadline = Infinity;
  let began = 0;
  // Each session's first step starts its policy host (a process, ~0.25 s): all of them are taken
  // before the clock starts, so the figures are the steady state (the cold start is in the policies bench).
  let ready = 0;
  let startClock;
  const allReady = new Promise((resolve) => (startClock = resolve));
  const warmUpStarted = performance.now();
  await Promise.all(
    sessionIds.map(async (sessionId) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/sessions/${sessionId}/ws`, { headers: { Authorization: `Api-Key ${key}` } });
      const messages = [];
      let waiting;
      socket.on('message', (message, isBinary) => {
        if (!isBinary) throw new Error(`server error: ${message}`);
        if (waiting) {
          const resolve = waiting;
          waiting = undefined;
          resolve(message);
        } else messages.push(message);
      });
      const receive = () => (messages.length > 0 ? Promise.resolve(messages.shift()) : new Promise((resolve) => (waiting = resolve)));
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      unpackr.unpack(await receive()); // metadata
      socket.send(frame);
      unpackr.unpack(await receive()); // the warm-up step
      if (++ready === sessionIds.length) {
        onStart();
        began = performance.now();
        deadline = began + seconds * 1000;
        startClock();
      }
      await allReady;
      while (performance.now() < deadline) {
        const started = performance.now();
        socket.send(frame);
        unpackr.unpack(await receive());
        times.push(performance.now() - started);
        steps++;
      }
      socket.close();
    }),
  );
  return { stepsPerS: steps / ((performance.now() - began) / 1000), times, warmUpMs: began - warmUpStarted };
}

export async function benchInference() {
  const inProcess = await inProcessCalls(HTTP_REQUESTS);
  const bare = await bareServer();
  const bareHttp = await steadyPosts({ port: bare.port, path: '/', headers: {}, count: HTTP_REQUESTS, ratePerS: RATE_PER_S });
  bare.stop();

  const { api, port, key, call, stop } = await startScratchApi('inference');
  let act;
  const sockets = [];
  try {
    const policy = await deployPolicy(call, { 'policy.json': JSON.stringify(manifest), 'policy.js': script });
    const actCpuBefore = cpuSeconds(api.child.pid).own;
    act = await steadyPosts({
      port,
      path: `/v1/policies/${policy.id}/act`,
      headers: { Authorization: `Bearer ${key}` },
      count: HTTP_REQUESTS,
      ratePerS: RATE_PER_S,
    });
    act.cpuMsPerRequest = ((cpuSeconds(api.child.pid).own - actCpuBefore) * 1000) / (HTTP_REQUESTS + 200);

    const robot = await call('/v1/robots', { name: 'bench', robotType: 'bench', controlFrequencyHz: 30, actionSpace: 'joint_position' });
    const datasetId = (await call('/v1/datasets', { name: 'sessions-bench', robotId: robot.id, access: 'private' })).id;
    for (const clients of [1, 8, 32]) {
      const sessionIds = [];
      for (let index = 0; index < clients; index++) sessionIds.push((await call('/v1/sessions', { policyId: policy.id, datasetId })).id);
      let before;
      const result = await webSocketSteps({
        port,
        key,
        sessionIds,
        seconds: WS_SECONDS,
        onStart: () => (before = cpuSeconds(api.child.pid)),
      });
      const after = cpuSeconds(api.child.pid);
      sockets.push({ clients, ...result, apiCpu: after.own - before.own, postgresCpu: after.descendants - before.descendants });
    }
  } finally {
    await stop();
  }

  const ms = (value) => +value.toFixed(3);
  const row = (name, times, extra = {}) => ({
    path: name,
    calls: times.length,
    'p50 ms': ms(percentile(times, 0.5)),
    'p99 ms': ms(percentile(times, 0.99)),
    ...extra,
  });
  console.table([
    row('in-process act() (sandboxed)', inProcess),
    row(`bare Node HTTP, ${RATE_PER_S} req/s`, bareHttp.times),
    row(`Kura POST /act, ${RATE_PER_S} req/s`, act.times, { 'api CPU ms per request': ms(act.cpuMsPerRequest) }),
  ]);
  const overhead = (fraction) => percentile(act.times, fraction) - percentile(inProcess, fraction);
  const overHttp = (fraction) => percentile(act.times, fraction) - percentile(bareHttp.times, fraction);
  console.table([
    {
      'HTTP act overhead p50 ms': ms(overhead(0.5)),
      'p99 ms': ms(overhead(0.99)),
      'of which bare HTTP p50/p99 ms': `${ms(percentile(bareHttp.times, 0.5))}/${ms(percentile(bareHttp.times, 0.99))}`,
      'Kura beyond bare HTTP p50/p99 ms': `${ms(overHttp(0.5))}/${ms(overHttp(0.99))}`,
    },
  ]);
  console.table(
    sockets.map((result) => ({
      'WebSocket clients': result.clients,
      'steps/s': Math.round(result.stepsPerS),
      'step p50 ms': ms(percentile(result.times, 0.5)),
      'step p99 ms': ms(percentile(result.times, 0.99)),
      'api CPU %': Math.round((result.apiCpu / WS_SECONDS) * 100),
      'Postgres + policy hosts CPU %': Math.round((result.postgresCpu / WS_SECONDS) * 100),
      'warm-up s': +(result.warmUpMs / 1000).toFixed(2),
      'steps per api CPU-second': Math.round((result.stepsPerS * WS_SECONDS) / result.apiCpu),
    })),
  );
  console.log(
    'targets: HTTP act overhead p50 ≤ 1 ms, p99 ≤ 5 ms at 200 req/s; WebSocket ≥ 2,000 steps/s on one core (each step recorded in Postgres)',
  );
  console.log('steps per api CPU-second: what one core running the api sustains; the clients and Postgres share the same 2 cores here');
}
