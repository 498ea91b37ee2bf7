import { z } from 'zod';
import type { FormatName, ImportSource, Importer } from './importer.js';

/**
 * One import format, as its folder registers it (`<format>/format.ts`): its name (one of
 * @kura/schema's `formatNames`), how it is recognised, its importer, and the per-upload options it
 * takes (`?options=<JSON>`), as a zod schema. registry.ts lists the registrations.
 */
export interface FormatRegistration<Options extends Record<string, unknown> = Record<string, unknown>> {
  readonly name: FormatName;
  /** Whether the source looks like this format (file names, magic bytes); cheap, reads little. */
  detect(source: ImportSource): Promise<boolean>;
  readonly importer: Importer<Options>;
  /** The upload's options; a strict object, so an option the format does not know is refused. */
  readonly optionsSchema: z.ZodType<Options>;
}

/** The options schema of a format that takes none: only `{}` passes. */
export const noOptions = () => z.strictObject({});

/**
 * Where an option problem is, as the API names it: `options.topics[0]`, `options.camera` (for an
 * unknown key, the key itself), or `options` for the object as a whole.
 */
export function optionsPath(issue: z.core.$ZodIssue): string {
  const path = issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...issue.path, issue.keys[0]] : issue.path;
  return path.reduce<string>(
    (text, segment) =>
      typeof segment === 'number'
        ? `${text}[${segment}]`
        : /^[A-Za-z_][A-Za-z0-9_]*$/.test(String(segment))
          ? `${text}.${String(segment)}`
          : `${text}[${JSON.stringify(String(segment))}]`,
    'options',
  );
}
