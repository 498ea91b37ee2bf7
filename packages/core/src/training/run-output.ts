import { trainingLimits } from '@kura/schema';

/** Longest stdout line read as a possible metric; longer lines are log text. */
const MAX_METRIC_LINE = 4096;

/**
 * The metric series of a run, from the JSON lines its trainer prints: `{"step": 100, "loss": 0.16}`
 * adds the point [100, 0.16] to series `loss`. Lines that are not a JSON object of finite numbers
 * are not metrics. Series and points past trainingLimits are dropped (and `truncated` says so), so
 * a trainer cannot make Kura store more than 32 × 10,000 points of a run.
 */
export class MetricSeries {
  readonly series = new Map<string, Array<[number, number]>>();
  truncated = false;
  private lines = 0;

  /** Records the line when it is a metric line; says whether it added a point (past the caps it adds none). */
  offer(line: string): boolean {
    if (line.length > MAX_METRIC_LINE || !line.startsWith('{')) return false;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return false;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return false;
    const entries = Object.entries(parsed as Record<string, unknown>);
    if (entries.length === 0 || !entries.every(([, value]) => typeof value === 'number' && Number.isFinite(value))) return false;
    this.lines++;
    const step = typeof (parsed as { step?: unknown }).step === 'number' ? (parsed as { step: number }).step : this.lines;
    let added = false;
    for (const [name, value] of entries as Array<[string, number]>) {
      if (name === 'step') continue;
      let points = this.series.get(name);
      if (!points) {
        if (this.series.size >= trainingLimits.maxMetricSeries || name.length > 100) {
          this.truncated = true;
          continue;
        }
        this.series.set(name, (points = []));
      }
      if (points.length >= trainingLimits.maxMetricPoints) this.truncated = true;
      else {
        points.push([step, value]);
        added = true;
      }
    }
    return added;
  }

  latest(): Record<string, number> {
    return Object.fromEntries([...this.series].flatMap(([name, points]) => (points.length ? [[name, points[points.length - 1]![1]]] : [])));
  }

  toJSON(): { series: Record<string, Array<[number, number]>>; truncated: boolean } {
    return { series: Object.fromEntries(this.series), truncated: this.truncated };
  }
}

/**
 * What a run's log keeps. Unguarded (every source downloadable by the run's owner): all output up to
 * maxLogBytes, the oldest cut first. Guarded (the run read data its owner may not download): the
 * metric lines (bounded by MetricSeries' caps) and only the last guardedLogTailBytes of other output,
 * so the log cannot carry the data out.
 */
export class RunLog {
  private kept: Buffer[] = [];
  private keptBytes = 0;
  private cutBytes = 0;
  private tail = Buffer.alloc(0);
  private partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };

  constructor(
    private readonly guarded: boolean,
    private readonly metrics: MetricSeries,
  ) {}

  /** Takes a chunk of the trainer's output. */
  write(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const text = this.partial[stream] + chunk.toString('utf8');
    const lines = text.split('\n');
    this.partial[stream] = lines.pop()!;
    // A line without an end grows only so far: past the metric line length it is plain text.
    if (this.partial[stream].length > MAX_METRIC_LINE) {
      lines.push(this.partial[stream]);
      this.partial[stream] = '';
    }
    for (const line of lines) this.line(stream, line);
  }

  /** The log as stored, once the run has ended. */
  finish(): string {
    for (const stream of ['stdout', 'stderr'] as const) if (this.partial[stream]) this.line(stream, this.partial[stream]);
    this.partial = { stdout: '', stderr: '' };
    const head = this.cutBytes > 0 ? `[… ${this.cutBytes} bytes of earlier output cut …]\n` : '';
    const body = Buffer.concat(this.kept).toString('utf8');
    if (!this.guarded) return head + body;
    const tail = this.tail.length > 0 ? `[last ${this.tail.length} bytes of other output]\n${this.tail.toString('utf8')}` : '';
    return `${body}${tail}`;
  }

  private line(stream: 'stdout' | 'stderr', line: string): void {
    const metric = stream === 'stdout' && this.metrics.offer(line);
    if (this.guarded && !metric) {
      this.tail = Buffer.concat([this.tail, Buffer.from(`${line}\n`)]);
      if (this.tail.length > trainingLimits.guardedLogTailBytes)
        this.tail = this.tail.subarray(this.tail.length - trainingLimits.guardedLogTailBytes);
      return;
    }
    this.keep(Buffer.from(`${line}\n`));
  }

  private keep(bytes: Buffer): void {
    this.kept.push(bytes);
    this.keptBytes += bytes.length;
    while (this.keptBytes > trainingLimits.maxLogBytes && this.kept.length > 1) {
      const dropped = this.kept.shift()!;
      this.keptBytes -= dropped.length;
      this.cutBytes += dropped.length;
    }
  }
}

/** A guarded run's error message: its first guardedErrorChars characters. */
export function guardedMessage(message: string, guarded: boolean): string {
  if (!guarded || message.length <= trainingLimits.guardedErrorChars) return message;
  return `${message.slice(0, trainingLimits.guardedErrorChars)}… (cut: the run used data beyond its owner's access)`;
}
