import { createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Inject, Injectable } from '@nestjs/common';
import { startJailed, type JailLevelChoice } from '@kura/jail';
import { trainerManifestSchema, trainingLimits, type TrainerManifest, type TrainingProblem } from '@kura/schema';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { BundleRejection, rejectBundle, unpackBundle } from '../common/bundle.js';
import type { KuraConfig } from '../config/config.js';
import { JAIL_LEVEL, KURA_CONFIG, LOGGER } from '../database/database.tokens.js';
import type { Logger } from '../logging/logger.js';
import { TrainersRepository } from './trainers.repository.js';

const MiB = 1024 * 1024;
/** Python files of a bundle the syntax check reads; past it the bundle is refused. */
const MAX_PYTHON_FILES = 2000;

/**
 * The syntax check: compiles every .py file of the bundle without running any of it, in the jail
 * (compiling is parsing hostile input). Prints the first error as one JSON line.
 */
const SYNTAX_CHECK = [
  'import ast, json, sys',
  'for path in sys.argv[1:]:',
  '    try:',
  '        with open(path, "rb") as f: ast.parse(f.read(), path)',
  '    except SyntaxError as e:',
  '        print(json.dumps({"file": path, "line": e.lineno, "message": e.msg})); sys.exit(3)',
  '    except (ValueError, RecursionError, MemoryError) as e:',
  '        print(json.dumps({"file": path, "line": None, "message": type(e).__name__ + ": " + str(e)[:300]})); sys.exit(3)',
].join('\n');

/**
 * Validates an uploaded trainer bundle (the `trainers.validate` job): unpacks it under the archive
 * rules, checks trainer.json and its entry, and compiles every Python file in the jail. The trainer
 * ends `ready` or `rejected` with coded problems. Only Kura's own storage failing is retried.
 */
@Injectable()
export class TrainerValidationService {
  constructor(
    private readonly trainers: TrainersRepository,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
    @Inject(JAIL_LEVEL) private readonly jail: JailLevelChoice,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async validate(trainerId: string, attempt: { attempt: number; maxAttempts: number }): Promise<void> {
    const trainer = await this.trainers.findById(trainerId);
    if (!trainer || trainer.status !== 'validating') return;
    await mkdir(this.config.training.directory, { recursive: true, mode: 0o711 });
    const work = await mkdtemp(join(this.config.training.directory, 'validate-'));
    await chmod(work, 0o711); // the syntax check runs as a user of its own
    try {
      const manifest = await this.check(trainer.bundleKey, work);
      if (await this.trainers.finishValidation(trainerId, { status: 'ready', manifest, errors: [] }))
        this.logger.info({ trainerId, name: manifest.name }, 'trainer ready');
    } catch (error) {
      if (error instanceof BundleRejection) {
        await this.trainers.finishValidation(trainerId, {
          status: 'rejected',
          manifest: (error.manifest as TrainerManifest | null) ?? null,
          errors: error.problems,
        });
        return;
      }
      if (attempt.attempt < attempt.maxAttempts) throw error;
      this.logger.error({ trainerId, err: error }, 'trainer validation failed');
      await this.trainers.finishValidation(trainerId, {
        status: 'rejected',
        manifest: null,
        errors: [
          {
            code: 'TRAINER_VALIDATION_FAILED',
            message: `Kura could not validate the bundle (${(error as Error).message}); upload it again later`,
          },
        ],
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** A worker died inside this validation `deaths` times: the bundle is rejected, not tried again. */
  async abandon(trainerId: string, deaths: number): Promise<void> {
    await this.trainers.finishValidation(trainerId, {
      status: 'rejected',
      manifest: null,
      errors: [
        { code: 'TRAINER_VALIDATION_FAILED', message: `validating the bundle ended the process ${deaths} times; it is not tried again` },
      ],
    });
  }

  /**
   * Unpacks a trainer's bundle into `destination` and returns its manifest and the folder holding
   * trainer.json (runs use it too: the bundle passed validation, so only storage can fail).
   */
  async unpack(bundleKey: string, destination: string): Promise<{ manifest: TrainerManifest; root: string; pythonFiles: string[] }> {
    await mkdir(destination, { recursive: true, mode: 0o755 });
    const bundle = `${destination}.bundle`;
    try {
      await pipeline(await this.blobs.get({ key: bundleKey }), createWriteStream(bundle));
      const { manifest, root, files } = await unpackBundle({
        file: bundle,
        destination,
        kind: 'trainer',
        manifestName: 'trainer.json',
        maxManifestBytes: trainingLimits.maxManifestBytes,
        schema: trainerManifestSchema,
        limits: {
          maxExpandedBytes: Math.min(4 * this.config.training.maxBundleBytes, 1024 * MiB, this.config.uploads.archive.maxExpandedBytes),
          maxTotalExpansionRatio: this.config.uploads.archive.maxTotalExpansionRatio,
          maxFiles: 10_000,
        },
        signal: new AbortController().signal,
      });
      const pythonFiles = files
        .map((file) => resolve(destination, file.path))
        .filter((path) => path.endsWith('.py') && path.startsWith(root + sep));
      return { manifest, root, pythonFiles };
    } finally {
      await rm(bundle, { force: true });
    }
  }

  private async check(bundleKey: string, work: string): Promise<TrainerManifest> {
    const { manifest, root, pythonFiles } = await this.unpack(bundleKey, join(work, 'bundle'));
    const entry = resolve(root, manifest.entry);
    const entryFile = relative(root, entry);
    if (entryFile.startsWith('..') || !(await lstat(entry).catch(() => undefined))?.isFile())
      rejectBundle('TRAINER_ENTRY_MISSING', `the entry "${manifest.entry}" is not a file inside the bundle`, { field: 'entry' }, manifest);
    if (pythonFiles.length > MAX_PYTHON_FILES)
      rejectBundle(
        'BUNDLE_TOO_MANY_FILES',
        `the bundle holds ${pythonFiles.length} Python files; a trainer may hold at most ${MAX_PYTHON_FILES}`,
        undefined,
        manifest,
      );
    if (this.jail.level === 'process')
      rejectBundle(
        'SANDBOX_UNAVAILABLE',
        "developers' code runs only in the bubblewrap jail, which this host cannot start",
        undefined,
        manifest,
      );
    const problem = await this.syntaxCheck(root, pythonFiles);
    if (problem) rejectBundle('TRAINER_SYNTAX_ERROR', problem.message, problem.location, manifest);
    return manifest;
  }

  /** Compiles the bundle's Python files in the jail; the first syntax error, or undefined. */
  private async syntaxCheck(root: string, files: string[]): Promise<TrainingProblem | undefined> {
    const bwrap = this.jail.level === 'bwrap';
    const inJail = (path: string) => (bwrap ? join('/code', relative(root, path)) : path);
    let stdout = '';
    const child = startJailed({
      level: this.jail.level,
      command: [this.config.training.python, '-I', '-B', '-c', SYNTAX_CHECK, ...files.map(inJail)],
      separateUser: true,
      mounts: [{ path: root, at: '/code' }],
      cwd: bwrap ? '/code' : root,
      env: { PYTHONDONTWRITEBYTECODE: '1' },
      limits: { memoryBytes: 512 * MiB, cpuSeconds: 30, wallClockMs: 60_000, fileSizeBytes: 0, maxMessageBytes: 1024, processes: 4 },
      onOutput: (stream, chunk) => {
        if (stream === 'stdout' && stdout.length < 4096) stdout += chunk.toString('utf8');
      },
    });
    const exit = await child.exit;
    if (exit.outcome === 'ok') return undefined;
    if (exit.exitCode === 3) {
      try {
        const found = JSON.parse(stdout.split('\n')[0]!) as { file: string; line: number | null; message: string };
        const file = bwrap ? relative('/code', found.file) : relative(root, found.file);
        return {
          code: 'TRAINER_SYNTAX_ERROR',
          message: `${file}${found.line ? `, line ${found.line}` : ''}: ${found.message}`,
          location: { file, ...(found.line ? { line: found.line } : {}) },
        };
      } catch {
        // fall through: an answer the check did not write
      }
    }
    return { code: 'TRAINER_SYNTAX_ERROR', message: `the syntax check ended ${exit.outcome}: ${exit.stderr.slice(-300)}` };
  }
}
