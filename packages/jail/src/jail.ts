import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { encodeFrame, FrameReader, FrameTooLarge, type Frame } from './frames.js';
import type { Readable, Writable } from 'node:stream';

/**
 * How strongly a child is confined.
 * - `bwrap`: bubblewrap namespaces (own mount, pid, net, ipc, uts and user namespace): the child sees
 *   only the system's read-only `/usr`, the Node binary, the mounts it is given, a private `/tmp`, and
 *   no network; plus everything `process` does.
 * - `process`: a child process with rlimits, a scrubbed environment and a deadline, but the host's
 *   filesystem view (where user namespaces are refused: macOS, locked-down containers).
 * - `unsafe-none`: the same as `process`; named so that running developers' code without namespaces is
 *   a choice someone made on purpose (KURA_SANDBOX=unsafe-none).
 */
export type JailLevel = 'bwrap' | 'process' | 'unsafe-none';
export type JailSetting = 'auto' | JailLevel;

export interface JailLevelChoice {
  level: JailLevel;
  /** Why this level: what was found, and what would give a stronger one. */
  reason: string;
}

/**
 * Limits of one jailed run. Memory is RLIMIT_DATA (writable private memory), not RLIMIT_AS: V8 and
 * WebAssembly reserve tens of GiB of address space they never touch, so an address-space limit stops
 * Node from starting at all, while RLIMIT_DATA counts only memory the child can write to.
 */
export interface JailLimits {
  memoryBytes: number;
  /** CPU seconds (RLIMIT_CPU): SIGXCPU past it. */
  cpuSeconds: number;
  /** Largest file the child may write (RLIMIT_FSIZE): SIGXFSZ past it. */
  fileSizeBytes: number;
  /** Deadline from the parent, on the wall clock: SIGKILL past it. */
  wallClockMs: number;
  /** Largest message line the child may send; past it the child is killed. */
  maxMessageBytes: number;
  /** RLIMIT_NOFILE. */
  openFiles?: number;
  /** Size of the private `/tmp` and of `/dev/shm` (`bwrap`: each a tmpfs in memory); 64 MiB unless given. The rest of the jail's own tree is read-only. */
  tmpBytes?: number;
  /**
   * RLIMIT_NPROC: processes and threads. Enforced only for a child on a `separateUser` (the kernel
   * does not count root's processes), else the pid namespace and the group kill are what is left.
   */
  processes?: number;
}

/** A host path the child sees at the same path (or at `at`, `bwrap` only): read-only unless `writable`. */
export interface JailMount {
  path: string;
  writable?: boolean;
  /** A device node (a GPU) the child may open: bound as a device (`bwrap --dev-bind`). */
  device?: boolean;
  at?: string;
}

export interface JailRequest {
  level: JailLevel;
  /** A JavaScript file run by the parent's own Node binary… */
  script?: string;
  /** …or a program and its arguments (an interpreter: Python), run as it is. */
  command?: string[];
  args?: string[];
  /**
   * `lines` (default): JSON lines both ways (`send`, `messages`). `frames`: binary frames (frames.ts),
   * `sendFrame` and `frames()`, for arrays.
   */
  channel?: 'lines' | 'frames';
  /**
   * Run the child as a user id of its own (from a range no account uses) when Kura runs as root:
   * RLIMIT_NPROC then counts only its processes, and it owns no file of the host.
   */
  separateUser?: boolean;
  /** What the child may see besides the system (`bwrap` only; `process` sees the host). */
  mounts: JailMount[];
  cwd?: string;
  /** The child's whole environment besides PATH, HOME and LANG: nothing of the parent's is passed on. */
  env?: Record<string, string>;
  limits: JailLimits;
  /** Extra Node flags, e.g. `--max-old-space-size`. */
  nodeOptions?: string[];
  /** Receives what the child writes to stdout and stderr (else stdout is discarded, stderr's tail kept). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

/**
 * How a jailed run ended. `memory`, `cpu`, `file-size`, `timeout` and `message-too-large` are the
 * limits; `crashed` is any other death by signal; `failed` a non-zero exit the child chose.
 */
export type JailOutcome = 'ok' | 'failed' | 'timeout' | 'memory' | 'cpu' | 'file-size' | 'message-too-large' | 'crashed';

export interface JailExit {
  outcome: JailOutcome;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last 64 KiB the child wrote to stderr. */
  stderr: string;
  durationMs: number;
}

const STDERR_TAIL_BYTES = 64 * 1024;
const PRLIMIT = '/usr/bin/prlimit';
const DEFAULT_TMP_BYTES = 64 * 1024 * 1024;
/** Where separate users' ids come from: far above any account's (Debian's go up to 60,000-ish; subuid ranges start at 100,000). */
const SEPARATE_USERS_FROM = 1_900_000_000;
const SEPARATE_USERS = 1_000_000;
let nextSeparateUser = 0;
let separateUsersWork: boolean | undefined;

/**
 * A fresh user id for one child, or undefined where there is none to take: Kura is not root, or
 * bubblewrap cannot start as an unprivileged user here (some kernels allow user namespaces to root only).
 */
function separateUserId(): number | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = SEPARATE_USERS_FROM + (nextSeparateUser++ % SEPARATE_USERS);
  separateUsersWork ??=
    spawnSync('bwrap', [...systemMounts(), '--unshare-all', '--die-with-parent', '--', '/bin/sh', '-c', 'exit 0'], {
      stdio: 'ignore',
      timeout: 10_000,
      uid,
      gid: uid,
    }).status === 0;
  return separateUsersWork ? uid : undefined;
}
/** The child's message channel: it writes JSON lines to this file descriptor. */
export const JAIL_MESSAGE_FD = 3;

/**
 * Picks the strongest level this host allows for `setting`: `auto` tries bubblewrap and falls back
 * to `process`; `bwrap` insists (throws when it cannot run, naming why).
 */
export function chooseJailLevel(setting: JailSetting): JailLevelChoice {
  if (setting === 'process') return { level: 'process', reason: 'KURA_SANDBOX=process' };
  if (setting === 'unsafe-none') return { level: 'unsafe-none', reason: 'KURA_SANDBOX=unsafe-none (no namespaces: development only)' };
  const probe = probeBubblewrap();
  if (probe.ok) return { level: 'bwrap', reason: 'bubblewrap runs here with user namespaces' };
  if (setting === 'bwrap') throw new Error(`KURA_SANDBOX=bwrap, but bubblewrap cannot run here: ${probe.why}`);
  return { level: 'process', reason: `bubblewrap unavailable (${probe.why}); children run with rlimits only` };
}

function probeBubblewrap(): { ok: true } | { ok: false; why: string } {
  if (process.platform !== 'linux') return { ok: false, why: `${process.platform} has no Linux namespaces` };
  const result = spawnSync('bwrap', [...systemMounts(), '--unshare-all', '--die-with-parent', '--', '/bin/sh', '-c', 'exit 0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 10_000,
  });
  if (result.error) {
    const code = (result.error as NodeJS.ErrnoException).code;
    return { ok: false, why: code === 'ENOENT' ? 'bwrap is not installed (apt-get install bubblewrap)' : result.error.message };
  }
  if (result.status !== 0) {
    const message = result.stderr.toString().trim().split('\n')[0] ?? '';
    return {
      ok: false,
      why: `bwrap failed: ${message} (user namespaces are refused: in Docker run with --security-opt seccomp=unconfined --security-opt apparmor=unconfined, or set kernel.unprivileged_userns_clone=1)`,
    };
  }
  return { ok: true };
}

/** The read-only system every jailed child gets: /usr, the usual /bin, /lib links, and Node itself. */
function systemMounts(): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const path of ['/bin', '/sbin', '/lib', '/lib32', '/lib64']) {
    if (!existsSync(path)) continue;
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(path), path);
    else args.push('--ro-bind', path, path);
  }
  // Shared libraries' cache, and Debian's alternatives (numpy finds its BLAS through them).
  for (const path of ['/etc/ld.so.cache', '/etc/alternatives', '/etc/ssl/certs']) if (existsSync(path)) args.push('--ro-bind', path, path);
  const nodeHome = dirname(dirname(realpathSync(process.execPath)));
  if (!nodeHome.startsWith('/usr')) args.push('--ro-bind', nodeHome, nodeHome);
  return args;
}

/**
 * Starts a jailed child. It reads JSON lines from stdin (`send`) and writes JSON lines to file
 * descriptor 3 (`messages`); stdout is discarded (libraries print) unless `onOutput` takes it, stderr kept in part for errors.
 */
export function startJailed(request: JailRequest): JailedProcess {
  return new JailedProcess(request);
}

export class JailedProcess {
  /** Resolves when the child is gone, with how it ended. Never rejects. */
  readonly exit: Promise<JailExit>;
  private readonly child: ChildProcess;
  private readonly queue: unknown[] = [];
  private waiting: (() => void) | undefined;
  private ended = false;
  private killedFor: JailOutcome | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private exited = false;
  private readonly wallClockMs: number;

  constructor(request: JailRequest) {
    const { limits } = request;
    const node = realpathSync(process.execPath);
    // V8 meets its own heap limit (a clean "heap out of memory") before the data limit would make a
    // page allocation fail under it (a SIGSEGV that says nothing).
    // Node itself and GC work space need ~160 MiB beside the heap (measured: 256 MiB of data limit
    // with a 150 MiB heap still segfaults, with 96 MiB it ends cleanly).
    const memoryMegabytes = limits.memoryBytes / (1024 * 1024);
    const heapMegabytes = Math.max(48, Math.floor(Math.min(memoryMegabytes * 0.6, memoryMegabytes - 160)));
    const program = request.command
      ? [...request.command, ...(request.args ?? [])]
      : [node, `--max-old-space-size=${heapMegabytes}`, ...(request.nodeOptions ?? []), request.script!, ...(request.args ?? [])];
    const user = request.separateUser ? separateUserId() : undefined;
    // rlimits are set by the shell right before it becomes Node: the same on both levels.
    const ulimits = [
      `ulimit -d ${Math.ceil(limits.memoryBytes / 1024)}`,
      // Soft below hard, so the child gets SIGXCPU (classified as `cpu`) before the kernel's SIGKILL.
      `ulimit -S -t ${Math.max(1, Math.ceil(limits.cpuSeconds))}`,
      `ulimit -H -t ${Math.max(1, Math.ceil(limits.cpuSeconds)) + 2}`,
      `ulimit -f ${Math.ceil(limits.fileSizeBytes / 512)}`,
      ...(limits.openFiles ? [`ulimit -n ${limits.openFiles}`] : []),
    ].join(' && ');
    // RLIMIT_NPROC through prlimit(1): POSIX sh's ulimit has no -u.
    const nproc = limits.processes && user !== undefined && existsSync(PRLIMIT) ? `${PRLIMIT} --nproc=${limits.processes} ` : '';
    const shell = ['/bin/sh', '-c', `unset PWD OLDPWD && ${ulimits} && exec ${nproc}"$@"`, 'kura-jail', ...program];
    const environment = { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', ...(request.env ?? {}) };
    const stdio: Array<'pipe' | 'ignore'> = ['pipe', request.onOutput ? 'pipe' : 'ignore', 'pipe', 'pipe'];
    const started = Date.now();
    if (request.level === 'bwrap') {
      const bind = (mount: JailMount) => (mount.device ? '--dev-bind' : mount.writable ? '--bind' : '--ro-bind');
      const mounts = request.mounts.flatMap((mount) => [bind(mount), mount.path, mount.at ?? mount.path]);
      const setenv = Object.entries(environment).flatMap(([name, value]) => ['--setenv', name, value]);
      this.child = spawn(
        'bwrap',
        [
          ...systemMounts(),
          '--proc',
          '/proc',
          '--dev',
          '/dev',
          // Private /tmp in memory: capped, or one child could fill half the host's RAM.
          '--size',
          String(limits.tmpBytes ?? DEFAULT_TMP_BYTES),
          '--tmpfs',
          '/tmp',
          ...mounts,
          // Shared memory capped like /tmp; then the root and /dev (both tmpfs bwrap makes) read-only:
          // a file written there would sit in the host's RAM outside every limit.
          '--size',
          String(limits.tmpBytes ?? DEFAULT_TMP_BYTES),
          '--tmpfs',
          '/dev/shm',
          '--remount-ro',
          '/dev',
          '--remount-ro',
          '/',
          '--chdir',
          request.cwd ?? '/tmp',
          '--unshare-all',
          '--die-with-parent',
          '--new-session',
          '--cap-drop',
          'ALL',
          '--clearenv',
          ...setenv,
          '--uid',
          '65534',
          '--gid',
          '65534',
          '--',
          ...shell,
        ],
        { stdio, env: {}, detached: true, ...(user !== undefined ? { uid: user, gid: user } : {}) },
      );
    } else {
      const [command, ...args] = shell;
      this.child = spawn(command!, args, {
        stdio,
        env: environment,
        cwd: request.cwd ?? tmpdir(),
        detached: true,
        ...(user !== undefined ? { uid: user, gid: user } : {}),
      });
    }

    let stderr = Buffer.alloc(0);
    const onOutput = request.onOutput;
    if (onOutput) (this.child.stdout as Readable).on('data', (chunk: Buffer) => onOutput('stdout', chunk));
    (this.child.stderr as Readable).on('data', (chunk: Buffer) => {
      onOutput?.('stderr', chunk);
      stderr = Buffer.concat([stderr, chunk]);
      if (stderr.length > STDERR_TAIL_BYTES * 2) stderr = stderr.subarray(stderr.length - STDERR_TAIL_BYTES);
    });
    (this.child.stdin as Writable).on('error', () => undefined); // a child that died does not read: not our error
    if (request.channel === 'frames') this.readFrames(this.child.stdio[JAIL_MESSAGE_FD] as Readable, limits.maxMessageBytes);
    else this.readMessages(this.child.stdio[JAIL_MESSAGE_FD] as Readable, limits.maxMessageBytes);

    this.wallClockMs = limits.wallClockMs;
    this.restartDeadline();
    this.exit = new Promise<JailExit>((resolve) => {
      const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
        this.exited = true;
        clearTimeout(this.deadline);
        const text = stderr.subarray(Math.max(0, stderr.length - STDERR_TAIL_BYTES)).toString('utf8');
        resolve({
          outcome: spawnError ? 'crashed' : classify(this.killedFor, exitCode, signal, text),
          exitCode,
          signal,
          stderr: spawnError ? `${spawnError.message}\n${text}` : text,
          durationMs: Date.now() - started,
        });
      };
      this.child.once('error', (error) => finish(null, null, error));
      this.child.once('close', (exitCode, signal) => finish(exitCode, signal));
    });
  }

  /** Whether the child is running and not being killed. */
  get alive(): boolean {
    return !this.exited && this.killedFor === undefined;
  }

  /**
   * Starts the wall-clock deadline again from now (`ms`, else the limit it was started with): a child
   * started ahead of its work (a spare, waiting with its modules loaded) gets its whole time for it.
   */
  restartDeadline(ms: number = this.wallClockMs): void {
    clearTimeout(this.deadline);
    if (!this.exited) this.deadline = setTimeout(() => this.killFor('timeout'), ms);
  }

  /** Sends one JSON message to the child's stdin. */
  send(message: unknown): void {
    const stdin = this.child.stdin as Writable;
    if (!stdin.destroyed) stdin.write(`${JSON.stringify(message)}\n`);
  }

  /** Sends one binary frame (channel `frames`). */
  sendFrame(header: Record<string, unknown>, body?: Uint8Array): void {
    const stdin = this.child.stdin as Writable;
    if (stdin.destroyed) return;
    for (const part of encodeFrame(header, body)) stdin.write(part);
  }

  /** The child's frames in order (channel `frames`); ends when the child closes its channel. */
  frames(): AsyncGenerator<Frame> {
    return this.messages() as AsyncGenerator<Frame>;
  }

  /** Resolves when the parent's writes have gone into the pipe (backpressure for large frames). */
  drained(): Promise<void> {
    const stdin = this.child.stdin as Writable;
    if (stdin.destroyed || !stdin.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        stdin.off('drain', done);
        stdin.off('close', done);
        resolve();
      };
      stdin.once('drain', done);
      stdin.once('close', done);
    });
  }

  /** The child's messages in order; ends when the child closes its message channel. */
  async *messages(): AsyncGenerator<unknown> {
    for (;;) {
      if (this.queue.length > 0) {
        yield this.queue.shift();
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  /** Closes the child's stdin: no more messages. */
  endInput(): void {
    (this.child.stdin as Writable).end();
  }

  /** Kills the child (and, through --die-with-parent / its process group, everything it started). */
  kill(): void {
    this.killFor('crashed');
  }

  private killFor(outcome: JailOutcome): void {
    this.killedFor ??= outcome;
    try {
      if (this.child.pid) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      this.child.kill('SIGKILL');
    }
  }

  private readFrames(channel: Readable, maxMessageBytes: number): void {
    const reader = new FrameReader(maxMessageBytes);
    channel.on('data', (chunk: Buffer) => {
      try {
        this.queue.push(...reader.push(chunk));
      } catch (error) {
        if (error instanceof FrameTooLarge) this.killFor('message-too-large');
        else this.kill();
        channel.destroy();
      }
      this.wake();
    });
    this.endWith(channel);
  }

  /** The channel's close (or failure) ends `messages()`. */
  private endWith(channel: Readable): void {
    const end = () => {
      this.ended = true;
      this.wake();
    };
    channel.once('close', end);
    channel.once('error', end);
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }

  private readMessages(channel: Readable, maxMessageBytes: number): void {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    channel.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
        const line = Buffer.concat([...pending, chunk.subarray(start, newline)]);
        pending = [];
        pendingBytes = 0;
        start = newline + 1;
        if (line.length === 0) continue;
        try {
          this.queue.push(JSON.parse(line.toString('utf8')));
        } catch {
          this.queue.push({ type: 'unparsable', text: line.subarray(0, 200).toString('utf8') });
        }
      }
      if (start < chunk.length) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        if (pendingBytes > maxMessageBytes) {
          pending = [];
          pendingBytes = 0;
          this.killFor('message-too-large');
          channel.destroy();
        }
      }
      this.wake();
    });
    this.endWith(channel);
  }
}

function classify(killedFor: JailOutcome | undefined, exitCode: number | null, signal: NodeJS.Signals | null, stderr: string): JailOutcome {
  if (killedFor) return killedFor;
  // bwrap reports a signalled child as exit 128 + signal number.
  const signalNumber = signal ? signalNumbers[signal] : exitCode !== null && exitCode > 128 ? exitCode - 128 : undefined;
  if (/out of memory|allocation failed|Reached heap limit|Cannot allocate memory|std::bad_alloc|MemoryError/i.test(stderr)) return 'memory';
  if (signalNumber === 24) return 'cpu';
  // Node ignores SIGXFSZ, so a write past the limit fails with EFBIG instead.
  if (signalNumber === 25 || /EFBIG|File too large/.test(stderr)) return 'file-size';
  if (exitCode === 0) return 'ok';
  if (signalNumber !== undefined) return 'crashed';
  return 'failed';
}

const signalNumbers: Partial<Record<NodeJS.Signals, number>> = {
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGTRAP: 5,
  SIGBUS: 7,
};
