/**
 * Pattern types from pattern modules (docs/sdk.md): unknown until registered, then validated
 * like built-in ones, with their `settings.custom` checked against the module's declaration and
 * `isolation: none` refused; a definition that is not one, or built for another SDK major, is
 * refused with E_PATTERN_MODULE.
 */
import { describe, expect, it } from 'vitest';
import { effectiveIsolation } from '../../../src/config/isolation.js';
import { registerPattern } from '../../../src/config/external-patterns.js';
import type { PatternDefinition } from '../../../src/sdk/definition.js';
import { check, validNamespace, type Obj } from '../../support/factories.js';

const definition: PatternDefinition = {
  sdkVersion: 1,
  type: 'counter-kv',
  description: 'test module',
  api: 'keyvalue',
  slots: { store: { required: true, needs: [['keyvalue']], description: 'keys' } },
  settings: {
    limit: { description: 'a positive integer', required: true, pattern: '[1-9][0-9]*' },
    window: { description: 'a duration', pattern: '[0-9]+(s|m)', default: '1m' },
  },
  createRunner: () => {
    throw new Error('not built in validation');
  },
};

const counter = (extra: Obj = {}): Obj => ({
  name: 'hits',
  type: 'counter-kv',
  slots: { store: { backend: 'redis' } },
  settings: { custom: { limit: '5' } },
  ...extra,
});
const rules = (ns: Obj) =>
  check(validNamespace({ patterns: [counter(ns)] })).diagnostics.map((d) => [d.rule, d.path]);

describe('pattern modules in validation', () => {
  it('refuses the type as unknown before its module is registered', () => {
    expect(rules({})).toEqual([['E_PATTERN_TYPE', '/patterns/0/type']]);
  });

  it('accepts it once registered, and runs it in a process of its own by default', () => {
    registerPattern(definition, 'file:///counter.js');
    const { diagnostics, loaded } = check(validNamespace({ patterns: [counter()] }));
    expect(diagnostics).toEqual([]);
    const ns = loaded[0]!.request;
    expect(effectiveIsolation(ns, ns.patterns[0]!)).toBe('pattern');
  });

  it('refuses isolation: none for a module pattern (E_ISOLATION_EXTERNAL)', () => {
    registerPattern(definition, 'file:///counter.js');
    expect(rules({ isolation: 'none' })).toEqual([['E_ISOLATION_EXTERNAL', '/patterns/0/isolation']]);
  });

  it('checks settings.custom against the declaration (E_SETTING_CUSTOM)', () => {
    registerPattern(definition, 'file:///counter.js');
    expect(rules({ settings: { custom: { limit: '0', burst: '2' } } })).toEqual([
      ['E_SETTING_CUSTOM', '/patterns/0/settings/custom/limit'],
      ['E_SETTING_CUSTOM', '/patterns/0/settings/custom/burst'],
    ]);
    expect(rules({ settings: { custom: { window: '5m' } } })).toEqual([
      ['E_SETTING_CUSTOM', '/patterns/0/settings/custom'],
    ]);
  });

  it('refuses settings.custom on a built-in pattern type', () => {
    const { diagnostics } = check(
      validNamespace({
        patterns: [
          {
            name: 'cache',
            type: 'keyvalue',
            slots: { store: { backend: 'redis' } },
            settings: { custom: { a: 'b' } },
          },
        ],
      }),
    );
    expect(diagnostics.map((d) => [d.rule, d.path])).toEqual([
      ['E_SETTING_NOT_APPLICABLE', '/patterns/0/settings/custom'],
    ]);
  });

  it('refuses a module built for another SDK major, or one whose type is built in', () => {
    expect(() => registerPattern({ ...definition, type: 'other-kv', sdkVersion: 2 }, 'file:///x.js')).toThrow(
      'pattern module file:///x.js: it was built for SDK 2; this prismctl has SDK 1',
    );
    expect(() => registerPattern({ ...definition, type: 'keyvalue' }, 'file:///x.js')).toThrow(
      "pattern module file:///x.js: type 'keyvalue' is already registered",
    );
  });
});
