// Reads that must not grow with the dataset (#14): a page of episodes walks the primary key and
// stops after the page, however many episodes the dataset holds — also right after an upload that
// multiplied the table, before autovacuum would have refreshed the planner's statistics.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrismaClient } from '@kura/core';
import { bearer, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { createDataset, publish } from '../../../../test/support/datasets.js';

const oneStepEpisodes = (count: number) =>
  Array.from(
    { length: count },
    (_, episode) =>
      `{"episode":${episode},"step":0,"timestamp":0,"observation":{"state":[${episode},1]},"action":[0,1],"language":"task ${episode % 10}"}`,
  ).join('\n') + '\n';

/** The plan Postgres picks for the listing's first page (the query Prisma sends, written out). */
async function firstPagePlan(prisma: PrismaClient, datasetId: string, version: number): Promise<string> {
  const rows = await prisma.$queryRawUnsafe<Array<{ 'QUERY PLAN': string }>>(
    `EXPLAIN SELECT episode_index FROM episodes WHERE dataset_id = $1 AND version <= $2 ORDER BY episode_index ASC LIMIT 51`,
    datasetId,
    version,
  );
  return rows.map((row) => row['QUERY PLAN']).join('\n');
}

describe('episode listing on a large dataset', () => {
  let kura: TestApp;
  let operator: { key: string };
  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
  });
  afterAll(async () => {
    await kura?.close();
  });

  it('pages by the primary key right after an upload of 20,000 episodes, not by sorting them all', async () => {
    const small = await createDataset(kura, operator.key, 'private');
    await publish(kura, operator.key, small, oneStepEpisodes(20));
    const large = await createDataset(kura, operator.key, 'private');
    const { version } = await publish(kura, operator.key, large, oneStepEpisodes(20_000));

    const plan = await firstPagePlan(kura.app.get(PrismaClient), large, version);
    expect(plan).toMatch(/Index Scan using episodes_pkey/);
    expect(plan).not.toMatch(/Sort/);

    const page = await kura.request.get(`/v1/datasets/${large}/episodes?limit=50`).set(bearer(operator.key));
    expect(page.status).toBe(200);
    expect(page.body.items.map((episode: { episodeIndex: number }) => episode.episodeIndex)).toEqual(
      Array.from({ length: 50 }, (_, index) => index),
    );
  }, 120_000);
});
