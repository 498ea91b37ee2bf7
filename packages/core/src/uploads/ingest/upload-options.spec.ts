// The jailed conversion checks the upload's options against its format's options schema again (the
// API checked them against the requested format): options stored before a format's schema changed
// fail the upload with a code and the option's location, and valid ones reach the importer parsed.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ImportError } from '@kura/formats';
import { testConversionRequest } from './testing.js';
import { convertUpload, type ConversionMessage } from './upload-conversion.js';

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'kura-options-'));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

async function convert(options: Record<string, unknown>): Promise<{ failure?: ImportError; messages: ConversionMessage[] }> {
  const work = await mkdtemp(join(folder, 'upload-'));
  const rawPath = join(work, 'raw');
  await writeFile(rawPath, `${JSON.stringify({ episode: 0, step: 0, action: [1] })}\n`);
  const messages: ConversionMessage[] = [];
  try {
    await convertUpload(testConversionRequest({ rawPath, work, options }), (message) => messages.push(message));
    return { messages };
  } catch (error) {
    if (error instanceof ImportError) return { failure: error, messages };
    throw error;
  }
}

describe('convertUpload and the upload options', () => {
  it('fails an upload whose options its format does not take, naming the option', async () => {
    const { failure } = await convert({ topics: ['/joint_states'] });
    expect(failure?.code).toBe('UPLOAD_OPTIONS_INVALID');
    expect(failure?.location).toEqual({ field: 'options.topics' });
    expect(failure?.message).toContain('kura-ndjson');
  });

  it('converts with {} (a format without options)', async () => {
    const { failure, messages } = await convert({});
    expect(failure).toBeUndefined();
    expect(messages.at(-1)).toMatchObject({ type: 'done', episodes: 1, steps: 1 });
  });
});
