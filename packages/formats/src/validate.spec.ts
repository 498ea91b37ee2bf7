import { describe, expect, it } from '@jest/globals';
import { findUnstorableText, type FeatureSpec } from '@kura/schema';
import { ImportError, type ImportedEpisode } from './importer.js';
import { validateEpisode } from './validate.js';

const features: FeatureSpec = { action: { dtype: 'float32', shape: [2] } };
const episode = (overrides: Partial<ImportedEpisode> = {}): ImportedEpisode => ({
  sourceId: 'e1',
  sourceEpisode: 'e1',
  file: 'data.ndjson',
  length: 1,
  task: 'pick',
  features: { action: { kind: 'tensor', values: Float32Array.of(1, 2) } },
  ...overrides,
});
const issueOf = (run: () => void) => {
  try {
    run();
  } catch (error) {
    if (error instanceof ImportError) return error.toIssue();
    throw error;
  }
  throw new Error('expected an ImportError');
};

describe('validateEpisode: text Postgres cannot store', () => {
  it.each([
    ['a task', episode({ task: 'pick\u0000cube' }), { field: 'language_instruction' }],
    ['a step task', episode({ task: undefined, stepTasks: ['pick\ud800'] }), { field: 'language_instruction', step: 0 }],
    ['the source’s episode id', episode({ sourceEpisode: 'run\u00007' }), { field: 'episode' }],
    ['the file name', episode({ file: 'a\u0000.ndjson' }), { field: 'file' }],
    ['a metadata value', episode({ metadata: { robot: { serial: ['x', 'a\u0000'] } } }), { field: 'metadata.robot.serial.1' }],
    ['a metadata key', episode({ metadata: { 'ser\u0000ial': 1 } }), { field: 'metadata.ser\\u0000ial' }],
  ])('refuses %s as STRING_INVALID with its location', (_what, bad, location) => {
    const issue = issueOf(() => validateEpisode(bad, features));
    expect(issue).toMatchObject({ code: 'STRING_INVALID', location: { episode: 'e1', ...location } });
    // The issue is stored with the upload: it must be storable itself.
    expect(findUnstorableText(issue)).toBeUndefined();
  });

  it('refuses a feature spec holding such text, and names the episode even when its id holds it', () => {
    const spec: FeatureSpec = { action: { dtype: 'float32', shape: [2], description: 'joint\u0000s' } };
    expect(issueOf(() => validateEpisode(episode(), spec))).toMatchObject({
      code: 'STRING_INVALID',
      location: { field: 'action.description' },
    });
    expect(issueOf(() => validateEpisode(episode({ sourceId: 'e\u00001' }), features)).location.episode).toBe('e\uFFFD1');
  });

  it('accepts text with paired surrogates (emoji) and other control characters', () => {
    expect(() => validateEpisode(episode({ task: 'pick 🍎\t\u0001', metadata: { note: '🤖' } }), features)).not.toThrow();
  });
});
