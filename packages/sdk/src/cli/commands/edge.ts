import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { edgePackageFiles, EDGE_MAX_RECORDS_PER_REPORT, type EdgeKeysView, type EdgeLicense } from '@kura/schema';
import { KuraError } from '../../errors.js';
import { configDirectory } from '../config.js';
import { contextOf, integerOption, observationOption } from '../context.js';
import { Output } from '../output.js';

// `kura edge`: run an exported policy on the robot's own computer (docs/edge.md). The runner
// (@kura/edge, with Kura's runtimes) is loaded only by these commands, so the rest of the CLI stays light.
const loadEdge = () => import('@kura/edge');

interface EdgeOptions {
  state?: string;
  keys?: string;
  device?: string;
  json?: boolean;
}

/** `$KURA_EDGE_STATE_DIR`, or `edge/` in the CLI's config folder: usage logs, one per export, and keys.json. */
const stateDirOf = (options: EdgeOptions) => options.state ?? (process.env.KURA_EDGE_STATE_DIR || join(configDirectory(), 'edge'));
const keysPathOf = (options: EdgeOptions) => options.keys ?? join(stateDirOf(options), 'keys.json');
const deviceOf = (options: EdgeOptions) => options.device ?? (process.env.KURA_EDGE_DEVICE_ID || hostname());

async function readKeys(options: EdgeOptions): Promise<EdgeKeysView> {
  const path = keysPathOf(options);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new KuraError('PATH_NOT_FOUND', `no keys at ${path}: run \`kura edge keys\` once where the server is reachable, or give --keys`);
  }
  try {
    return JSON.parse(text) as EdgeKeysView;
  } catch {
    throw new KuraError('BAD_ARGUMENT', `${path} is not JSON`);
  }
}

/** Runs an edge step; an error the runner coded (EDGE_*, OBSERVATION_INVALID, POLICY_*) is printed with its code. */
async function coded<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof KuraError || !(error instanceof Error)) throw error;
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(code)) throw new KuraError(code, error.message, { cause: error });
    throw error;
  }
}

async function openRunner(packagePath: string, options: EdgeOptions & { window?: string }) {
  const { EdgeRunner } = await loadEdge();
  const keys = await readKeys(options);
  const windowS = integerOption(options.window, '--window');
  return coded(() =>
    EdgeRunner.open({
      packagePath,
      keys,
      deviceId: deviceOf(options),
      stateDir: stateDirOf(options),
      ...(windowS ? { windowMs: windowS * 1000 } : {}),
    }),
  );
}

async function licenseOf(packagePath: string): Promise<{ files: Map<string, Buffer>; license: EdgeLicense }> {
  const { unpackEdgePackage } = await loadEdge();
  const files = await coded(async () => unpackEdgePackage(await readFile(packagePath)));
  const bytes = files.get(edgePackageFiles.license);
  if (!bytes) throw new KuraError('EDGE_PACKAGE_INVALID', `${packagePath} has no ${edgePackageFiles.license}`);
  return { files, license: JSON.parse(bytes.toString('utf8')) as EdgeLicense };
}

const common = (command: Command) =>
  command
    .option('--state <dir>', 'where usage logs and keys.json live (default: $KURA_EDGE_STATE_DIR or ~/.config/kura/edge)')
    .option('--keys <file>', "the deployment's published keys (default: keys.json in the state folder)")
    .option('--json', 'print JSON');

export function edgeCommands(program: Command): void {
  const edge = program.command('edge').description("run exported policies on a robot's own computer, offline (docs/edge.md)");

  common(edge.command('keys').description('fetch the deployment’s published keys, which packages are checked against offline'))
    .option('--out <file>', 'where to write them (default: keys.json in the state folder)')
    .action(async (options: EdgeOptions & { out?: string }) => {
      const { client, output } = await contextOf(options);
      const keys = await client.edge.keys();
      const path = options.out ?? keysPathOf(options);
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      await writeFile(path, `${JSON.stringify(keys, null, 2)}\n`);
      output.result({ file: path, kids: keys.keys.map((key) => key.kid) }, () => `${keys.keys.length} keys: ${path}`);
    });

  common(
    edge.command('verify <package>').description('check a package as a device does before running it: signature, sha256s, expiry'),
  ).action(async (packagePath: string, options: EdgeOptions) => {
    const output = new Output(Boolean(options.json));
    const { verifyEdgePackage } = await loadEdge();
    const { files } = await licenseOf(packagePath);
    const license = await coded(async () => verifyEdgePackage(files, await readKeys(options)));
    output.result(license, () => [
      `export ${license.exportId}: policy ${license.policy.id} (${license.policy.runtime}) for device ${license.deviceId}`,
      `expires ${license.expiresAt}, quota ${license.callQuota ?? 'none'}, signed by ${license.kid}`,
    ]);
  });

  common(edge.command('run <package>').description('run the package’s policy once on an observation, offline; the call is counted'))
    .requiredOption('--obs <json>', 'the observation as JSON, or @file.json')
    .option('--task <text>', 'the task, for language-conditioned policies')
    .option('--device <id>', 'this device’s id (default: $KURA_EDGE_DEVICE_ID or the host name)')
    .action(async (packagePath: string, options: EdgeOptions & { obs: string; task?: string }) => {
      const output = new Output(Boolean(options.json));
      const observation = await observationOption(options.obs);
      const runner = await openRunner(packagePath, options);
      try {
        const { action, latencyMs } = await coded(() => runner.act(observation, { task: options.task }));
        output.result(
          { action, policyId: runner.license.policy.id, latencyMs },
          () => `action ${JSON.stringify(action)} (${latencyMs} ms)`,
        );
      } finally {
        await runner.close();
      }
    });

  common(edge.command('serve <package>').description('serve the package’s policy locally: POST /act and openpi’s WebSocket, offline'))
    .option('--port <port>', 'port (default 8090)', '8090')
    .option('--host <host>', 'interface (default 127.0.0.1: this computer only)', '127.0.0.1')
    .option('--device <id>', 'this device’s id (default: $KURA_EDGE_DEVICE_ID or the host name)')
    .option('--window <seconds>', 'how often counted calls are written to the usage log (default 60)')
    .action(async (packagePath: string, options: EdgeOptions & { port: string; host: string; window?: string }) => {
      const output = new Output(Boolean(options.json));
      const { serveEdgePolicy } = await loadEdge();
      const runner = await openRunner(packagePath, options);
      const served = await serveEdgePolicy(runner, { port: integerOption(options.port, '--port') ?? 8090, host: options.host });
      output.result({ url: served.url, exportId: runner.license.exportId }, () => `serving ${runner.license.policy.id} at ${served.url}`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await served.close();
      await runner.close();
    });

  common(
    edge.command('report <package>').description('upload the package’s usage log (the records the deployment does not have yet)'),
  ).action(async (packagePath: string, options: EdgeOptions) => {
    const { client, output } = await contextOf(options);
    const { UsageLog } = await loadEdge();
    const { license } = await licenseOf(packagePath);
    const log = await coded(() => UsageLog.read(stateDirOf(options), license.exportId));
    const known = await client.edge.get(license.exportId);
    const records = log.after(known.usage.lastSeq);
    let reply = undefined as Awaited<ReturnType<typeof client.edge.report>> | undefined;
    // Always one report, even with nothing new: a renewal needs a recent one.
    for (let start = 0; start === 0 || start < records.length; start += EDGE_MAX_RECORDS_PER_REPORT)
      reply = await client.edge.report(license.exportId, records.slice(start, start + EDGE_MAX_RECORDS_PER_REPORT));
    output.result(
      reply,
      () =>
        `export ${license.exportId}: ${records.length} records sent, ${reply!.calls} calls reported in all${reply!.overQuota ? ' (over quota)' : ''}`,
    );
  });

  common(
    edge.command('renew <package>').description('extend the package’s expiry (after a recent report): its license is replaced in place'),
  )
    .requiredOption('--expires <date>', 'the new expiry (ISO date; at most 366 days away)')
    .action(async (packagePath: string, options: EdgeOptions & { expires: string }) => {
      const { client, output } = await contextOf(options);
      const { packEdgePackage } = await loadEdge();
      const { files, license } = await licenseOf(packagePath);
      const renewed = await client.edge.renew(license.exportId, options.expires);
      files.set(edgePackageFiles.license, Buffer.from(renewed.license));
      files.set(edgePackageFiles.signature, Buffer.from(`${renewed.signature}\n`));
      const order = Object.values(edgePackageFiles).filter((name) => files.has(name));
      const temporary = `${packagePath}.renewing`;
      await writeFile(
        temporary,
        await packEdgePackage(
          order.map((name) => [name, files.get(name)!]),
          new Date(),
        ),
      );
      await rename(temporary, packagePath);
      // The new license may be signed by a key made since: keep the device's keys current while online.
      const keys = await client.edge.keys();
      await mkdir(dirname(keysPathOf(options)), { recursive: true, mode: 0o700 });
      await writeFile(keysPathOf(options), `${JSON.stringify(keys, null, 2)}\n`);
      output.result(renewed.export, () => `export ${license.exportId} renewed until ${renewed.export.expiresAt}: ${packagePath}`);
    });
}
