import { join } from 'node:path';
import type { Command } from 'commander';
import { formatDescriptions, formatNames, inspectedFieldLabel, type McapInspection } from '@kura/schema';
import type { UploadView } from '../../client.js';
import { KuraError } from '../../errors.js';
import { configDirectory } from '../config.js';
import { bytesOption, contextOf, type CommandContext } from '../context.js';
import { formatBytes, issueLine } from '../output.js';

export function uploadCommands(program: Command): void {
  program
    .command('upload <path>')
    .description('upload a file, or a folder (archived on the fly), into a dataset; large ones go in resumable parts')
    .requiredOption('--dataset <id>', 'the dataset')
    .option('--format <format>', `${formatNames.join(', ')} (detected when absent; see below)`)
    .option('--options <json>', "the format's options for this upload, a JSON object (needs --format)")
    .option('--wait', 'follow processing until published or failed')
    .option('--part-size <size>', 'part size of resumable uploads (e.g. 64MiB; at least 5MiB)')
    .option('--multipart-threshold <size>', 'size from which uploads go in parts (default 64MiB)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `\nFormats, in the order detection tries them:\n${formatNames.map((name) => `  ${name.padEnd(16)} ${formatDescriptions[name]}`).join('\n')}`,
    )
    .action(async (path: string, options: Record<string, string | boolean | undefined>) => {
      const context = await contextOf(options);
      const { client, output } = context;
      const reading = output.progress('reading', 'bytes');
      const sending = output.progress('sending', 'bytes');
      let upload: UploadView;
      try {
        upload = await client.uploads.uploadPath(String(options.dataset), path, {
          format: options.format as string | undefined,
          options: jsonObjectOption(options.options as string | undefined, '--options'),
          partSize: bytesOption(options.partSize as string | undefined, '--part-size'),
          multipartThreshold: bytesOption(options.multipartThreshold as string | undefined, '--multipart-threshold'),
          stateDirectory: join(configDirectory(), 'uploads'),
          onProgress: ({ phase, bytes, total }) => (phase === 'reading' ? reading : sending).update(bytes, total),
        });
      } finally {
        reading.stop();
        sending.stop();
      }
      if (!options.wait) {
        output.result(upload, () => `upload ${upload.id}: ${upload.status} (${formatBytes(upload.bytes)})`);
        return;
      }
      output.note(`upload ${upload.id}: ${formatBytes(upload.bytes)} stored; processing…`);
      await follow(context, upload.id);
    });

  program
    .command('uploads')
    .description('uploads')
    .command('status <id>')
    .description("an upload's status, errors and warnings")
    .option('--watch', 'follow it until published or failed')
    .option('--json', 'print JSON')
    .action(async (id: string, options: { watch?: boolean; json?: boolean }) => {
      const context = await contextOf(options);
      if (options.watch) await follow(context, id);
      else {
        const upload = await context.client.uploads.get(id);
        report(context, upload);
      }
    });
}

/** Follows processing with a bar; a failed upload prints its errors with their locations and fails the command. */
async function follow(context: CommandContext, id: string): Promise<void> {
  const bar = context.output.progress('processing', 'percent');
  let upload: UploadView;
  try {
    upload = await context.client.uploads.wait(id, { onValue: (value) => bar.update(Math.round(value.progress * 100), 100) });
  } finally {
    bar.stop();
  }
  report(context, upload);
}

function report(context: CommandContext, upload: UploadView): void {
  context.output.result(upload, () => {
    const lines = [
      `upload ${upload.id}: ${upload.status}${upload.status === 'processing' ? ` (${Math.round(upload.progress * 100)}%)` : ''}`,
    ];
    if (upload.status === 'published')
      lines.push(`  version ${upload.version}: ${upload.episodeCount} episodes, ${upload.stepCount} steps, format ${upload.format}`);
    for (const warning of upload.warnings) lines.push(`  warning ${issueLine(warning)}`);
    if (upload.inspection) {
      lines.push(`  ${upload.errors[0]?.message ?? 'a mapping is needed'}`, ...inspectionLines(upload.inspection));
      return lines;
    }
    for (const error of upload.errors) lines.push(`  error ${issueLine(error)}`);
    return lines;
  });
  if (upload.status === 'needs_mapping')
    throw new KuraError(
      'MAPPING_REQUIRED',
      `upload ${upload.id} needs a mapping: upload again with --options '{"mapping": …}' (the suggestion above is a start)`,
    );
  if (upload.status === 'failed') {
    const first = upload.errors[0];
    throw new KuraError('UPLOAD_FAILED', `upload ${upload.id} failed${first ? `: ${issueLine(first)}` : ''}`);
  }
}

/** A JSON-object option (`--options '{"topics":["/joint_states"]}'`), or a usage error naming it. */
function jsonObjectOption(value: string | undefined, name: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new KuraError('BAD_ARGUMENT', `${name} is not JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new KuraError('BAD_ARGUMENT', `${name} must be a JSON object, e.g. {}`);
  return parsed as Record<string, unknown>;
}

/** A bag's topics as a table, and the suggested mapping as the JSON to pass back in --options. */
function inspectionLines(inspection: McapInspection): string[] {
  const lines = [`  topics of ${inspection.file}${inspection.files > 1 ? ` (and ${inspection.files - 1} more files)` : ''}:`];
  for (const topic of inspection.topics) {
    const fields = topic.fields.map(inspectedFieldLabel);
    const rate = topic.rateHz === null ? '' : ` ${topic.rateHz} Hz`;
    lines.push(
      `    ${topic.topic} (${topic.schemaName ?? 'no schema'}, ${topic.messageCount} messages${rate})` +
        (topic.undecodable ? ` — not readable: ${topic.undecodable}` : fields.length > 0 ? ` ${fields.join(' ')}` : ''),
    );
  }
  if (inspection.suggestedMapping)
    lines.push('  suggested mapping (pass it as --options):', `    ${JSON.stringify({ mapping: inspection.suggestedMapping })}`);
  return lines;
}
