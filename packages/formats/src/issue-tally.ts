import type { ImportContext, ImportIssue } from './importer.js';

/**
 * Warnings that would repeat once per episode (a dataset every demo has and Kura leaves out), kept
 * as one warning per key: the first occurrence as location, and how many episodes had it.
 */
export class IssueTally {
  private readonly issues = new Map<string, { first: ImportIssue; count: number }>();

  /** Counts one occurrence; `issue` is built only the first time a key is seen. */
  note(key: string, issue: () => ImportIssue): void {
    const known = this.issues.get(key);
    if (known) known.count++;
    else this.issues.set(key, { first: issue(), count: 1 });
  }

  /** Sends one warning per key, saying in how many of `total` episodes (or `unit`) it occurred. */
  flush(context: ImportContext, total: number, unit = 'episodes'): void {
    for (const { first, count } of this.issues.values()) {
      context.warn({ ...first, message: `${first.message} (in ${count} of ${total} ${unit}; the location is the first)` });
    }
    this.issues.clear();
  }
}
