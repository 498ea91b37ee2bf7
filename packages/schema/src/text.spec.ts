import { describe, expect, it } from '@jest/globals';
import { findUnstorableText, formatTextPath, storableText, unstorableTextProblem } from './text.js';

describe('text Postgres cannot store', () => {
  it('finds U+0000 and unpaired surrogates, not pairs', () => {
    expect(unstorableTextProblem('a\u0000b')).toMatch(/U\+0000 \(NUL\) at character 1/);
    expect(unstorableTextProblem('a\udc00')).toMatch(/unpaired UTF-16 surrogate U\+DC00/);
    expect(unstorableTextProblem('🤖 \u0001 é')).toBeUndefined();
    expect(storableText('a\u0000\ud800🤖')).toBe('a\uFFFD\uFFFD🤖');
  });

  it('walks values and keys in document order, without recursion', () => {
    expect(findUnstorableText({ a: ['ok', 'b\u0000'], c: 'd\u0000' })?.path).toEqual(['a', 1]);
    const finding = findUnstorableText({ list: [{ 'k\u0000': 1 }] });
    expect(finding?.path).toEqual(['list', 0, 'k\u0000']);
    expect(formatTextPath(finding!.path)).toBe('list.0.k\\u0000');
    let deep: unknown = 'x\u0000';
    for (let level = 0; level < 200_000; level++) deep = [deep];
    expect(findUnstorableText(deep)?.path).toHaveLength(200_000);
  });
});
