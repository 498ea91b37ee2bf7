/*
 * Text Postgres cannot store. `text` columns refuse U+0000 ("invalid byte sequence"), jsonb refuses
 * its `\u0000` escape, and an unpaired UTF-16 surrogate (a JSON "\ud800" escape, or text decoded from
 * bad bytes) is not a Unicode scalar value, so it cannot be written as UTF-8 at all. Requests and
 * uploads are checked with these before anything reaches the database.
 */

// With the u flag, a surrogate pair is one code point, so \p{Cs} matches only unpaired halves.
// NUL is the very character to find here.
// eslint-disable-next-line no-control-regex
const unstorableCharacter = /[\u0000\p{Cs}]/u;
// eslint-disable-next-line no-control-regex
const unstorableCharacters = /[\u0000\p{Cs}]/gu;

/** What is wrong with `text` ("U+0000 at character 3"), or undefined when Postgres can store it. */
export function unstorableTextProblem(text: string): string | undefined {
  const match = unstorableCharacter.exec(text);
  if (!match) return undefined;
  const codePoint = `U+${match[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  const what = match[0] === '\u0000' ? `${codePoint} (NUL)` : `an unpaired UTF-16 surrogate ${codePoint}`;
  return `contains ${what} at character ${match.index}, which cannot be stored`;
}

/** `text` with every character Postgres cannot store replaced by U+FFFD, for messages that quote input. */
export function storableText(text: string): string {
  return text.replace(unstorableCharacters, '\uFFFD');
}

/** Where a JSON-like value holds unstorable text: the path to the string or object key, and the problem. */
export interface UnstorableTextFinding {
  /** Object keys and array indices down to the string; a key that is itself bad ends the path. */
  path: Array<string | number>;
  /** Whether the last part of the path (an object key) is the bad text, rather than the value there. */
  inKey: boolean;
  problem: string;
}

/**
 * The first string or object key in `value` (parsed JSON, a query object) that Postgres cannot store.
 * Walks with an explicit stack, so a deeply nested body cannot overflow the call stack.
 */
export function findUnstorableText(value: unknown): UnstorableTextFinding | undefined {
  // Each entry links to its parent, so a path is built only for the finding (copying it per level
  // would cost the square of the depth).
  interface Place {
    value: unknown;
    part?: string | number;
    parent?: Place;
  }
  const pathTo = (place: Place | undefined, last: Array<string | number> = []): Array<string | number> => {
    const path: Array<string | number> = [];
    for (let at = place; at?.part !== undefined; at = at.parent) path.push(at.part);
    return [...path.reverse(), ...last];
  };
  const stack: Place[] = [{ value }];
  while (stack.length > 0) {
    const place = stack.pop()!;
    const item = place.value;
    if (typeof item === 'string') {
      const problem = unstorableTextProblem(item);
      if (problem) return { path: pathTo(place), inKey: false, problem };
    } else if (Array.isArray(item)) {
      for (let index = item.length - 1; index >= 0; index--) {
        // Numbers (most of an observation) hold no text: not pushed at all.
        if (holdsText(item[index])) stack.push({ value: item[index], part: index, parent: place });
      }
    } else if (typeof item === 'object' && item !== null) {
      const entries: Array<[string, unknown]> = Object.entries(item);
      for (const [key] of entries) {
        const problem = unstorableTextProblem(key);
        if (problem) return { path: pathTo(place, [key]), inKey: true, problem };
      }
      for (let index = entries.length - 1; index >= 0; index--) {
        const [key, child] = entries[index]!;
        if (holdsText(child)) stack.push({ value: child, part: key, parent: place });
      }
    }
  }
  return undefined;
}

const holdsText = (value: unknown) => typeof value === 'string' || (typeof value === 'object' && value !== null);

/** The field (`metadata.serial`) and a message naming it, for a finding under `root`. */
export function describeUnstorableText(
  finding: UnstorableTextFinding,
  root: Array<string | number> = [],
): { field: string; message: string } {
  const field = formatTextPath([...root, ...finding.path]);
  return { field, message: `${field ? `${field}: ` : ''}${finding.inKey ? 'a key that ' : ''}${finding.problem}` };
}

/** A path as `sources.0.datasetId`, each key's unstorable characters written as JSON escapes (`state\u0000`). */
export function formatTextPath(path: Array<string | number>): string {
  return path.map((part) => (typeof part === 'number' ? String(part) : escapeUnstorable(part))).join('.');
}

function escapeUnstorable(text: string): string {
  return text.replace(unstorableCharacters, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
