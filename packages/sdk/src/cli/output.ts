import cliProgress from 'cli-progress';
import { formatLocation, type ErrorLocation } from '../errors.js';

/** How a command speaks: `--json` prints the API's objects as JSON on stdout, otherwise short lines. */
export class Output {
  constructor(readonly json: boolean) {}

  /** The result: JSON when asked, else the human lines. */
  result(value: unknown, human: () => string | string[]): void {
    if (this.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    else {
      const lines = human();
      process.stdout.write(`${Array.isArray(lines) ? lines.join('\n') : lines}\n`);
    }
  }

  /** A note on stderr (never mixed into JSON output). */
  note(text: string): void {
    if (!this.json) process.stderr.write(`${text}\n`);
  }

  /** A progress bar on stderr, only on a terminal and never with --json. */
  progress(label: string, unit: 'bytes' | 'percent'): Progress {
    if (this.json || !process.stderr.isTTY) return new Progress(undefined, unit);
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
        format: (options, params, payload: { rate?: string; amount?: string }) => {
          const width = options.barsize ?? 30;
          const filled = Math.round(params.progress * width);
          const eta = params.eta > 0 && Number.isFinite(params.eta) && params.progress < 1 ? ` ETA ${formatSeconds(params.eta)}` : '';
          return `${label} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${Math.floor(params.progress * 100)}% ${payload.amount ?? ''} ${payload.rate ?? ''}${eta}`;
        },
      },
      cliProgress.Presets.shades_classic,
    );
    return new Progress(bar, unit);
  }
}

export class Progress {
  private started = false;
  private readonly startedAt = Date.now();

  constructor(
    private readonly bar: cliProgress.SingleBar | undefined,
    private readonly unit: 'bytes' | 'percent',
  ) {}

  update(value: number, total: number | undefined): void {
    if (!this.bar) return;
    const seconds = Math.max((Date.now() - this.startedAt) / 1000, 0.001);
    const payload =
      this.unit === 'bytes'
        ? { amount: `${formatBytes(value)}${total ? `/${formatBytes(total)}` : ''}`, rate: `${formatBytes(value / seconds)}/s` }
        : {};
    const end = total ?? Math.max(value, 1);
    if (!this.started) {
      this.bar.start(end, value, payload);
      this.started = true;
    } else {
      this.bar.setTotal(end);
      this.bar.update(value, payload);
    }
  }

  stop(): void {
    if (this.started) this.bar?.stop();
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

/** Rows as aligned columns under a header. */
export function table(rows: Array<Record<string, unknown>>, columns: string[]): string[] {
  const text = (value: unknown): string => {
    if (value === null || value === undefined) return '-';
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return value.toString();
    return JSON.stringify(value);
  };
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => text(row[column]).length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, index) => cell.padEnd(widths[index]!))
      .join('  ')
      .trimEnd();
  return [line(columns), ...rows.map((row) => line(columns.map((column) => text(row[column]))))];
}

/** `CODE at file x, episode 3: message` for an upload or validation error. */
export function issueLine(issue: { code: string; message: string; location?: ErrorLocation | undefined }): string {
  const where = formatLocation(issue.location);
  return `${issue.code}${where ? ` at ${where}` : ''}: ${issue.message}`;
}
