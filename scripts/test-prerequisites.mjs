// `npm test`'s pretest: makes sure the machine has what the tests drive besides npm packages, so the
// README's two commands are all the set-up there is. Missing pieces are installed with apt when we
// are root on Debian/Ubuntu; otherwise the run stops with one message naming them and the command.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Socket } from 'node:net';

const prerequisites = [
  {
    name: 'Redis',
    aptPackage: 'redis-server',
    why: 'queue and quota tests (one is started by the tests when none answers on REDIS_URL or 127.0.0.1:6379)',
    present: async () => (await redisAnswers()) || onPath('redis-server'),
  },
  {
    name: 'Chromium',
    aptPackage: 'chromium',
    why: 'the web viewer tests (test/browser) drive /usr/bin/chromium',
    present: async () => existsSync('/usr/bin/chromium'),
  },
  {
    name: 'bubblewrap',
    aptPackage: 'bubblewrap',
    why: "the jail tests run parsers and developers' code under bwrap (packages/jail)",
    present: async () => onPath('bwrap'),
  },
  {
    name: 'Python with numpy',
    aptPackage: 'python3-numpy',
    why: "Python policies run with Debian's /usr/bin/python3 (KURA_PYTHON) and its numpy",
    present: async () => pythonImports('numpy'),
  },
  {
    name: 'PyTorch for Python',
    aptPackage: 'python3-torch',
    why: 'the Python policy tests load a torch model (test/fixtures/python-policies/mlp-torch)',
    present: async () => pythonImports('torch'),
  },
];

function pythonImports(module) {
  return spawnSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

const missing = [];
for (const prerequisite of prerequisites) if (!(await prerequisite.present())) missing.push(prerequisite);
if (missing.length === 0) process.exit(0);

const packages = missing.map((prerequisite) => prerequisite.aptPackage);
const installCommand = `apt-get update && apt-get install -y ${packages.join(' ')}`;
const isRoot = process.getuid?.() === 0;
if (!isRoot || !onPath('apt-get')) {
  const list = missing.map((prerequisite) => `  - ${prerequisite.name}: ${prerequisite.why}`).join('\n');
  console.error(`npm test needs programs this machine does not have:\n${list}\nInstall them (as root on Debian/Ubuntu): ${installCommand}`);
  process.exit(1);
}

console.log(`pretest: installing ${packages.join(', ')} with apt-get (needed by the tests)`);
const environment = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [
  ['update', '-qq'],
  ['install', '-y', '-qq', ...packages],
]) {
  const result = spawnSync('apt-get', args, { stdio: 'inherit', env: environment });
  if (result.status !== 0) {
    console.error(`pretest: apt-get ${args.join(' ')} failed (exit ${result.status}); install by hand: ${installCommand}`);
    process.exit(1);
  }
}

function onPath(command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function redisAnswers() {
  const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (answer) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(Number(url.port || 6379), url.hostname, () => done(true));
  });
}
