import { Injectable } from '@nestjs/common';
import { SessionsRepository, type SessionStepRecord } from './sessions.repository.js';

/** Statements in flight at once; steps arriving meanwhile wait and go together in the next one. */
const MAX_IN_FLIGHT = 2;

interface PendingStep {
  sessionId: string;
  step: SessionStepRecord;
  settle: (outcome: { landed: boolean } | { error: unknown }) => void;
}

/**
 * Group commit for session steps: steps of different sessions that arrive together are written in
 * one statement and one commit, and each caller is answered only once its step is committed. A
 * lone step goes out on the next turn of the event loop, so batching adds no wait of its own.
 */
@Injectable()
export class SessionStepWriter {
  private pending: PendingStep[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(private readonly sessions: SessionsRepository) {}

  /** Resolves 'ok' once the step is committed, 'stale' when the session ended or its index was taken. */
  append(sessionId: string, step: SessionStepRecord): Promise<'ok' | 'stale'> {
    return new Promise((resolve, reject) => {
      this.pending.push({
        sessionId,
        step,
        settle: (outcome) => ('error' in outcome ? reject(toError(outcome.error)) : resolve(outcome.landed ? 'ok' : 'stale')),
      });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= MAX_IN_FLIGHT || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    // A session's steps are serialized by its caller, so one batch holds at most one step per session;
    // a second one (never expected) waits for the next batch rather than being judged stale.
    const batch: PendingStep[] = [];
    const later: PendingStep[] = [];
    const sessionsInBatch = new Set<string>();
    for (const pending of this.pending) {
      if (sessionsInBatch.has(pending.sessionId)) later.push(pending);
      else {
        sessionsInBatch.add(pending.sessionId);
        batch.push(pending);
      }
    }
    this.pending = later;
    if (batch.length === 0) return;
    this.inFlight++;
    try {
      const landed = await this.sessions.appendSteps(batch);
      for (const pending of batch) pending.settle({ landed: landed.has(pending.sessionId) });
    } catch (error) {
      for (const pending of batch) pending.settle({ error });
    } finally {
      this.inFlight--;
      this.schedule();
    }
  }
}

const toError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));
