"""Kura's Python policy host: loads one bundle's policy.py and answers the api's frames.

Runs jailed (bubblewrap, no network, the bundle read-only, a private /tmp, rlimits), started by
jailed-policy-runtime.ts as `python3 -I -B kura_policy_host.py`. Frames (packages/jail/src/frames.ts):
u32 LE header length, u32 LE body length, a JSON header, the body. Requests come on stdin, answers go
to file descriptor 3; stdout is discarded, so a policy may print.
"""
import importlib.machinery
import importlib.util
import json
import os
import struct
import sys
import traceback

ANSWERS = 3
MAX_MESSAGE = 1000


def read_exact(stream, size):
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def read_frame(stream):
    prefix = read_exact(stream, 8)
    if prefix is None:
        return None, None
    header_bytes, body_bytes = struct.unpack('<II', prefix)
    header = json.loads(read_exact(stream, header_bytes).decode('utf-8'))
    body = read_exact(stream, body_bytes) if body_bytes else b''
    return header, body


def send(header, body=b''):
    data = json.dumps(header).encode('utf-8')
    frame = struct.pack('<II', len(data), len(body)) + data + body
    view = memoryview(frame)
    while view:
        written = os.write(ANSWERS, view)
        view = view[written:]


def error(code, message, exception=None, **details):
    index = getattr(exception, 'kura_call_index', None)
    if index is not None:
        details['callIndex'] = index
    answer = {'type': 'error', 'code': code, 'message': message[:MAX_MESSAGE]}
    if details:
        answer['details'] = details
    send(answer)


def describe(exception):
    text = ''.join(traceback.format_exception_only(type(exception), exception)).strip()
    return text[:MAX_MESSAGE]


class Policy:
    def __init__(self, manifest, bundle_dir):
        import numpy  # the documented runtime: Debian's python3-numpy (and python3-torch)

        self.numpy = numpy
        shape = manifest['action']['shape']
        self.count = shape[0] * shape[1] if len(shape) == 2 else shape[0]
        self.shape_text = '[' + ', '.join(str(d) for d in shape) + ']'
        entry = os.path.join(bundle_dir, manifest['entry'])
        sys.path.insert(0, bundle_dir)
        # Whatever the entry's name, it is Python source.
        spec = importlib.util.spec_from_loader('policy', importlib.machinery.SourceFileLoader('policy', entry))
        self.module = importlib.util.module_from_spec(spec)
        sys.modules['policy'] = self.module
        spec.loader.exec_module(self.module)
        self.act_function = getattr(self.module, 'act', None)
        self.reset_function = getattr(self.module, 'reset', None)

    def act(self, arrays, context, body):
        numpy = self.numpy
        observation = {}
        for entry in arrays:
            raw = body[entry['offset']:entry['offset'] + entry['bytes']]
            if entry['kind'] == 'bytes':
                observation[entry['name']] = raw
            else:
                dtype = numpy.float32 if entry['kind'] == 'f32' else numpy.float64
                observation[entry['name']] = numpy.frombuffer(raw, dtype=dtype).astype(numpy.float32)
        result = self.act_function(observation, dict(context))
        if hasattr(result, 'detach'):  # a torch tensor
            result = result.detach().cpu().numpy()
        try:
            values = numpy.asarray(result, dtype=numpy.float64).reshape(-1)
        except (TypeError, ValueError) as exception:
            raise BadOutput('act() returned something that is not numbers: ' + describe(exception))
        if values.size != self.count:
            raise BadOutput('act() returned %d numbers; the action shape %s holds %d' % (values.size, self.shape_text, self.count))
        action = values.astype(numpy.float32)
        if not numpy.all(numpy.isfinite(action)):
            raise BadOutput('act() returned a number that is not finite (as a 32-bit float)')
        return action.astype('<f4').tobytes(), int(values.size)


class BadOutput(Exception):
    pass


def main():
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # what the policy prints goes nowhere
    stdin = sys.stdin.buffer
    policy = None
    while True:
        header, body = read_frame(stdin)
        if header is None:
            return
        kind = header.get('type')
        try:
            if kind == 'load':
                try:
                    policy = Policy(header['manifest'], header['bundleDir'])
                except SyntaxError as exception:
                    error('POLICY_SYNTAX_ERROR', describe(exception))
                    continue
                except MemoryError:
                    error('POLICY_MEMORY_LIMIT', 'loading policy.py ran out of memory')
                    continue
                except BaseException as exception:  # noqa: B902 — anything the policy raises is its answer
                    error('POLICY_THREW', 'policy.py failed while loading: ' + describe(exception))
                    continue
                if not callable(policy.act_function):
                    error('POLICY_NO_ACT', 'policy.py defines no act(observation, context) function')
                    policy = None
                    continue
                send({'type': 'loaded', 'observationShapes': None})
            elif policy is None:
                error('POLICY_DISPOSED', 'the policy is not loaded')
            elif kind == 'act':
                action, count = policy.act(header['arrays'], header['context'], body)
                send({'type': 'action', 'length': count}, action)
            elif kind == 'actMany':
                answers = []
                for index, (arrays, context) in enumerate(zip(header['arrays'], header['contexts'])):
                    try:
                        answers.append(policy.act(arrays, context, body))
                    except BaseException as exception:  # noqa: B902 — answered below, with the step
                        exception.kura_call_index = index
                        raise
                send({'type': 'actions', 'lengths': [count for _, count in answers]}, b''.join(action for action, _ in answers))
            elif kind == 'reset':
                if callable(policy.reset_function):
                    policy.reset_function()
                send({'type': 'done'})
            else:
                error('POLICY_CRASHED', 'unknown request %r' % (kind,))
        except BadOutput as exception:
            error('POLICY_BAD_OUTPUT', str(exception), exception)
        except MemoryError as exception:
            error('POLICY_MEMORY_LIMIT', 'the policy ran out of memory', exception)
        except BaseException as exception:  # noqa: B902
            if isinstance(exception, SystemExit):
                error('POLICY_THREW', 'the policy called exit()', exception)
            else:
                error('POLICY_THREW', describe(exception), exception)


if __name__ == '__main__':
    main()
