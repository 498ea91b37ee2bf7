// A jailed policy host (see jailed-policy-runtime.ts): loads one JS or ONNX policy with the runtimes
// of ../runtimes and answers the api's frames one at a time. It holds no secret and sees no file of
// Kura's but its code: whatever the policy does, the worst is this process's death.
import { jailChannel, jailFrames } from '@kura/jail';
import type { FeatureSpec, PolicyCallContext, PolicyManifest, PolicyObservation } from '@kura/schema';
import { isPolicyError, loadPolicyRuntime, PolicyError, quarantinedIsolateCount, type PolicyRuntime } from '../runtimes/policy-runtime.js';
import { decodeObservation, type HostAnswer, type HostRequest } from './host-protocol.js';

const answer = (message: HostAnswer, body?: Uint8Array) => jailFrames.send(message, body);

function failure(error: unknown): Extract<HostAnswer, { type: 'error' }> {
  if (isPolicyError(error))
    return { type: 'error', code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
  return {
    type: 'error',
    code: 'POLICY_CRASHED',
    message: `the policy host failed: ${error instanceof Error ? error.message : String(error)}`,
  };
}

/** act() on each call in turn; a failure names its step (`details.callIndex`), as actMany's do. */
async function actInTurn(
  runtime: PolicyRuntime,
  calls: Array<{ observation: PolicyObservation; context: PolicyCallContext }>,
): Promise<Float32Array[]> {
  const actions: Float32Array[] = [];
  for (const [index, call] of calls.entries()) {
    try {
      actions.push(await runtime.act(call.observation, call.context));
    } catch (error) {
      if (isPolicyError(error)) throw new PolicyError(error.code, error.message, { details: { ...error.details, callIndex: index } });
      throw error;
    }
  }
  return actions;
}

async function main(): Promise<void> {
  jailChannel.exitWithParent();
  let runtime: PolicyRuntime | undefined;
  for await (const frame of jailFrames.frames()) {
    const request = frame.header as unknown as HostRequest;
    try {
      if (request.type === 'load') {
        runtime = await loadPolicyRuntime({
          manifest: request.manifest as PolicyManifest,
          entry: frame.body,
          limits: request.limits as Record<string, number>,
          // This process serves one policy, one call at a time: its calls may block it.
          blocking: true,
          ...(request.features ? { features: request.features as FeatureSpec } : {}),
        });
        answer({ type: 'loaded', observationShapes: (runtime.observationShapes as Record<string, number[]> | undefined) ?? null });
      } else if (!runtime) {
        answer({ type: 'error', code: 'POLICY_DISPOSED', message: 'the policy is not loaded' });
      } else if (request.type === 'actMany') {
        const calls = request.contexts.map((context, index) => ({
          observation: decodeObservation(request.arrays[index]!, frame.body),
          context,
        }));
        const actions = runtime.actMany ? await runtime.actMany(calls) : await actInTurn(runtime, calls);
        const body = Buffer.concat(actions.map((action) => Buffer.from(action.buffer, action.byteOffset, action.byteLength)));
        answer({ type: 'actions', lengths: actions.map((action) => action.length) }, body);
      } else if (request.type === 'act') {
        const action = await runtime.act(decodeObservation(request.arrays, frame.body), request.context);
        answer({ type: 'action', length: action.length }, new Uint8Array(action.buffer, action.byteOffset, action.byteLength));
      } else {
        await runtime.reset();
        answer({ type: 'done' });
      }
    } catch (error) {
      answer(failure(error));
    }
    // An isolate that could not be stopped keeps its thread and memory, and Node can no longer exit
    // by itself: the host ends now, and the api starts another one when the policy is called again.
    if (quarantinedIsolateCount() > 0) process.kill(process.pid, 'SIGKILL');
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
