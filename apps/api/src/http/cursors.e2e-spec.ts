// A cursor is refused unless it is one the server wrote, whatever its shape: `{}`, a number, an array
// or base64 garbage used to decode to nothing and start the list from its beginning.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { seedDataset } from '../../../../test/support/datasets.js';
import { deployPolicy } from '../../../../test/support/policies.js';

const base64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

describe('list cursors', () => {
  let kura: TestApp;
  let datasetId: string;
  let policyId: string;

  beforeAll(async () => {
    kura = await startTestApp();
    ({ datasetId } = await seedDataset(kura, kura.adminKey, { episodes: 3, length: 1 }));
    policyId = await deployPolicy(kura, kura.adminKey, {
      'policy.json': JSON.stringify({
        name: 'cursor',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state'],
        action: { shape: [2] },
      }),
      'policy.js': 'function act() { return [0, 0]; }',
    });
  }, 120_000);
  afterAll(async () => {
    await kura.close();
  });

  const lists = () => [
    `/v1/datasets/${datasetId}/episodes`,
    `/v1/datasets/${datasetId}/versions`,
    '/v1/robots',
    '/v1/datasets',
    '/v1/keys',
    '/v1/policies',
    `/v1/policies/${policyId}/evaluations`,
    `/v1/datasets/${datasetId}/grants`,
    `/v1/datasets/${datasetId}/uploads`,
  ];
  const malformed = [
    ['an object', 'cursor=%7B%7D'],
    ['a number', 'cursor=5'],
    ['an empty array', 'cursor=%5B%5D'],
    ['an array', 'cursor=a&cursor=b'],
    ['base64 garbage', `cursor=${base64url('1')}!!`],
    ['padded base64', `cursor=${base64url('1')}%3D%3D`],
    ['a negative number', `cursor=${base64url('-1')}`],
    ['a fraction', `cursor=${base64url('1.5')}`],
    ['an exponent', `cursor=${base64url('1e0')}`],
    ['text', `cursor=${base64url('{}')}`],
  ] as const;
  const cases = () => lists().flatMap((list) => malformed.map(([what, query]) => [`${list} with ${what}`, `${list}?${query}`] as const));

  it('refuses every malformed cursor on every list with a 400 naming `cursor`', async () => {
    const accepted: string[] = [];
    for (const [name, url] of cases()) {
      const response = await kura.request.get(url).set(bearer(kura.adminKey));
      const error = response.body.error;
      const namesCursor =
        error?.details?.location?.field === 'cursor' ||
        (error?.details?.issues ?? []).some((issue: { path: string }) => issue.path === 'cursor');
      if (response.status !== 400 || !namesCursor) accepted.push(`${name}: ${response.status} ${error?.code ?? ''}`);
    }
    expect(accepted).toEqual([]);
  });

  it('still follows the cursors it writes', async () => {
    const first = await kura.request.get(`/v1/datasets/${datasetId}/episodes?limit=2`).set(bearer(kura.adminKey));
    const second = await kura.request
      .get(`/v1/datasets/${datasetId}/episodes?limit=2&cursor=${first.body.nextCursor}`)
      .set(bearer(kura.adminKey));
    expect([...first.body.items, ...second.body.items].map((episode: { episodeIndex: number }) => episode.episodeIndex)).toEqual([0, 1, 2]);
    await kura.createKey('user');
    const keys = await kura.request.get('/v1/keys?limit=1').set(bearer(kura.adminKey));
    const nextKeys = await kura.request.get(`/v1/keys?limit=1&cursor=${keys.body.nextCursor}`).set(bearer(kura.adminKey));
    expect(nextKeys.body.items).toHaveLength(1);
    expect(nextKeys.body.items[0].id).not.toBe(keys.body.items[0].id);
  });
});
