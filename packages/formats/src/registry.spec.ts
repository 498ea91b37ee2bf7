import { describe, expect, it } from '@jest/globals';
import { formatNames } from '@kura/schema';
import { z } from 'zod';
import { optionsPath, type FormatRegistration } from './format.js';
import { detectFormat, formatRegistration, formats, importers, parseFormatOptions } from './registry.js';

describe('the format registry', () => {
  it("holds one registration per name of @kura/schema's formatNames, in that order", () => {
    expect(formats.map((format) => format.name)).toEqual([...formatNames]);
    for (const format of formats) {
      expect(format.importer.format).toBe(format.name);
      expect(formatRegistration(format.name)).toBe(format);
    }
    expect(importers).toEqual(formats.map((format) => format.importer));
  });

  it('detects nothing in an empty source', async () => {
    expect(await detectFormat({ files: [] })).toBeUndefined();
  });

  it.each(formatNames)('%s takes no options yet: {} (or none) passes, any option is refused where it is', (name) => {
    expect(parseFormatOptions(name, undefined)).toEqual({ success: true, data: {} });
    expect(parseFormatOptions(name, {})).toEqual({ success: true, data: {} });
    const refused = parseFormatOptions(name, { topics: ['/joint_states'] });
    expect(refused.success).toBe(false);
    expect(refused.error!.issues.map(optionsPath)).toEqual(['options.topics']);
  });
});

describe('optionsPath', () => {
  // A test-only format schema with options, as a format that takes some would declare it.
  const withOptions: FormatRegistration<{ topics: string[]; camera?: { name: string } }>['optionsSchema'] = z.strictObject({
    topics: z.array(z.string().min(1)),
    camera: z.strictObject({ name: z.string() }).optional(),
  });
  const pathsOf = (value: unknown) => {
    const result = withOptions.safeParse(value);
    return result.success ? [] : result.error.issues.map(optionsPath);
  };

  it('names the option: indices in brackets, unknown keys by name, odd keys quoted', () => {
    expect(pathsOf({ topics: ['/a', 7] })).toEqual(['options.topics[1]']);
    expect(pathsOf({ topics: [], camera: { name: 'top', fps: 30 } })).toEqual(['options.camera.fps']);
    expect(pathsOf({ topics: [], 'camera name': 'top' })).toEqual(['options["camera name"]']);
    expect(pathsOf([])).toEqual(['options']);
    expect(pathsOf({ topics: ['/a'] })).toEqual([]);
  });
});
