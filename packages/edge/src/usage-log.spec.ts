import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { genesisHash } from '@kura/core/edge-runtime';
import { UsageLog } from './usage-log.js';

const exportId = 'edx_test';
const at = (second: number) => new Date(Date.UTC(2026, 11, 7, 4, 0, second));

describe('the usage log', () => {
  let state: string;
  const file = () => join(state, `${exportId}.usage.log`);
  const codeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'opened',
      (error: { code?: string }) => error.code,
    );
  const written = async (windows: number) => {
    const log = await UsageLog.open(state, exportId);
    for (let index = 0; index < windows; index++) await log.append({ from: at(index * 10), to: at(index * 10 + 5), calls: index + 1 });
    await log.close();
  };

  beforeEach(async () => {
    state = await mkdtemp(join(tmpdir(), 'kura-usage-log-'));
  });
  afterEach(async () => {
    await rm(state, { recursive: true, force: true });
  });

  it('chains records from the export’s genesis hash and reads them back', async () => {
    await written(3);
    const log = await UsageLog.read(state, exportId);
    const records = log.after(0);
    expect(records.map((record) => [record.seq, record.calls])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect(records[0]!.prev).toBe(genesisHash(exportId));
    expect(records[1]!.prev).toBe(records[0]!.hash);
    expect([log.head.seq, log.head.hash, log.calls]).toEqual([3, records[2]!.hash, 6]);
    expect(log.after(2).map((record) => record.seq)).toEqual([3]);
  });

  it('drops a line a crash cut short, and keeps every record before it', async () => {
    await written(2);
    await appendFile(file(), '{"exportId":"edx_test","seq":3,"fr');
    // A reader meanwhile leaves the line out without touching the file…
    expect((await UsageLog.read(state, exportId)).head.seq).toBe(2);
    // …the next writer cuts it off and goes on from record 2.
    const log = await UsageLog.open(state, exportId);
    await log.append({ from: at(30), to: at(31), calls: 9 });
    await log.close();
    const reread = await UsageLog.read(state, exportId);
    expect(reread.after(0).map((record) => [record.seq, record.calls])).toEqual([
      [1, 1],
      [2, 2],
      [3, 9],
    ]);
  });

  it('refuses a log whose records were changed, dropped, reordered or are not records', async () => {
    await written(3);
    const intact = await readFile(file(), 'utf8');
    const lines = intact.trimEnd().split('\n');
    const cases: Array<[string, string]> = [
      [intact.replace('"calls":2', '"calls":0'), 'EDGE_USAGE_TAMPERED'],
      [`${[lines[0], lines[2]].join('\n')}\n`, 'EDGE_USAGE_GAP'],
      [`${[lines[1], lines[0], lines[2]].join('\n')}\n`, 'EDGE_USAGE_GAP'],
      [`${lines[0]}\nnot json\n${lines[2]}\n`, 'EDGE_LOG_INVALID'],
      [`${lines[0]}\n{"seq":2}\n`, 'EDGE_LOG_INVALID'],
    ];
    const outcomes: string[] = [];
    for (const [content] of cases) {
      await writeFile(file(), content);
      outcomes.push(String(await codeOf(UsageLog.open(state, exportId))));
    }
    expect(outcomes).toEqual(cases.map(([, code]) => code));
  });

  it('has one writer at a time; a dead writer’s lock is taken over', async () => {
    const first = await UsageLog.open(state, exportId);
    expect(await codeOf(UsageLog.open(state, exportId))).toBe('EDGE_LOG_LOCKED');
    await first.close();
    // A lock left by a process that is gone (pid 2^22 + 1 is beyond Linux's pid range).
    await writeFile(`${file()}.lock`, `${2 ** 22 + 1}\n`);
    const second = await UsageLog.open(state, exportId);
    await second.append({ from: at(0), to: at(1), calls: 1 });
    await second.close();
    expect((await UsageLog.read(state, exportId)).calls).toBe(1);
  });
});
