// A builder for cases that are one request and its answer (most of the http and auth families).
import type { CaseContext, Family, HostileCase } from '../corpus.js';
import type { RequestOptions } from '../kura.js';
import { statusOf } from '../kura.js';
import type { World } from '../world.js';

type OrWorld<T> = T | ((world: World) => T);
const resolve = <T>(value: OrWorld<T>, world: World): T => (typeof value === 'function' ? (value as (world: World) => T)(world) : value);

export interface RequestCase {
  family: Family;
  name: string;
  expect: string | readonly string[];
  maxMs?: number;
  method: string;
  path: OrWorld<string>;
  options?: OrWorld<RequestOptions>;
  /** Text that must not be in the answer (B's secret for auth cases): its presence is reported as a LEAK. */
  mustNotContain?: OrWorld<readonly string[]>;
}

/** One request; the outcome is `<status> <code>`, plus ` LEAK of …` when the answer holds forbidden text. */
export function requestCase(spec: RequestCase): HostileCase {
  return {
    family: spec.family,
    name: spec.name,
    expect: spec.expect,
    ...(spec.maxMs === undefined ? {} : { maxMs: spec.maxMs }),
    async run({ client, world }: CaseContext) {
      const reply = await client.request(spec.method, resolve(spec.path, world), spec.options ? resolve(spec.options, world) : {});
      const leaked = (spec.mustNotContain ? resolve(spec.mustNotContain, world) : []).filter((text) => reply.text.includes(text));
      return `${statusOf(reply)}${leaked.length > 0 ? ` LEAK of ${leaked.join(', ')}` : ''}`;
    },
  };
}
