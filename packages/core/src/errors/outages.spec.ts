import { describe, expect, it } from '@jest/globals';
import { databaseClientError, outageOf } from './outages.js';

describe('outageOf: errors of Kura’s own pg connections (COPY)', () => {
  const socketError = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});

  it('a dropped or refused connection is the database’s once marked as coming from it', () => {
    expect(outageOf(databaseClientError(socketError('Connection terminated unexpectedly')))).toBe('database');
    expect(outageOf(databaseClientError(socketError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')))).toBe('database');
    // Unmarked, pg's message names no service: that is why COPY errors are wrapped.
    expect(outageOf(socketError('Connection terminated unexpectedly'))).toBeUndefined();
    expect(outageOf(socketError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'))).toBe('service');
  });

  it('a statement Postgres refuses is not an outage; one it cut short by shutting down is', () => {
    const refused = Object.assign(new Error('duplicate key value violates unique constraint'), {
      severity: 'ERROR',
      routine: '_bt_check_unique',
      code: '23505',
    });
    expect(outageOf(databaseClientError(refused))).toBeUndefined();
    const shutdown = Object.assign(new Error('terminating connection due to administrator command'), {
      severity: 'FATAL',
      routine: 'ProcessInterrupts',
      code: '57P01',
    });
    expect(outageOf(databaseClientError(shutdown))).toBe('database');
  });
});
