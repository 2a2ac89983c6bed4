/** Validation of the `encryption` setting of producers and consumers (docs/messaging.md "Encryption"). */
import { describe, expect, it } from 'vitest';
import {
  check,
  consumerPattern,
  keyvaluePattern,
  producerPattern,
  sessionNamespace,
  textAt,
  validNamespace,
  type Obj,
} from '../../support/factories.js';

const producer = (encryption: Obj) => producerPattern({ settings: { topic: 'orders.events', encryption } });
const consumer = (encryption: Obj) =>
  consumerPattern({ settings: { topic: 'orders.events', consumer_group: 'billing', encryption } });

/** The one diagnostic of a namespace, with the text it points at. */
function only(ns: Obj) {
  const { diagnostics, text } = check(ns);
  expect(diagnostics).toHaveLength(1);
  const d = diagnostics[0]!;
  return { ...d, at: textAt(text, d) };
}

describe('encryption setting', () => {
  it('accepts every field on a producer and a consumer of a namespace with auth.vault', () => {
    const ns = sessionNamespace([
      producer({ key: 'transit/orders', data_key_ttl: '10m', data_key_max_messages: 5000 }),
      consumer({ key: 'kv-team/transit/orders', vault_role: 'prism-orders-billing', data_key_ttl: '1h' }),
    ]);
    expect(check(ns).diagnostics).toEqual([]);
  });

  it('refuses encryption in a namespace without auth.vault, as there is no Vault to take data keys from', () => {
    expect(only(validNamespace({ patterns: [producer({ key: 'transit/orders' })] }))).toEqual({
      severity: 'error',
      rule: 'E_ENCRYPTION_VAULT',
      message:
        "pattern 'events' (producer) sets encryption, which takes its data keys from Vault's transit engine, but the namespace does not enable auth.vault",
      file: 'ns.yaml',
      line: 12,
      column: 14,
      path: '/patterns/0/settings/encryption/key',
      hint: 'enable `auth: { vault: { enabled: true, address: ..., role: ... } }`, or remove encryption',
      at: 'transit/orders',
    });
  });

  it('refuses a key that is not <mount>/<key-name>', () => {
    expect(only(sessionNamespace([producer({ key: 'orders' })]))).toMatchObject({
      rule: 'E_SCHEMA_PATTERN',
      message: "patterns[0].settings.encryption.key 'orders' has the wrong format",
      path: '/patterns/0/settings/encryption/key',
      hint: "for example 'transit/orders'",
      line: 12,
      column: 14,
      at: 'orders',
    });
  });

  it('requires the key and names the fields it knows', () => {
    expect(only(sessionNamespace([producer({ vault_role: 'x' })]))).toMatchObject({
      rule: 'E_SCHEMA_REQUIRED',
      message: "patterns[0].settings.encryption is missing required key 'key'",
      path: '/patterns/0/settings/encryption',
    });
    expect(only(sessionNamespace([producer({ key: 'transit/orders', algorithm: 'aes' })]))).toMatchObject({
      rule: 'E_SCHEMA_UNKNOWN_KEY',
      message: "unknown key 'algorithm' in patterns[0].settings.encryption",
      hint: 'expected one of: key, vault_role, data_key_ttl, data_key_max_messages',
      line: 13,
      column: 9,
    });
  });

  it('refuses a data_key_ttl of 0', () => {
    expect(only(sessionNamespace([producer({ key: 'transit/orders', data_key_ttl: '0s' })]))).toMatchObject({
      rule: 'E_ENCRYPTION_DATA_KEY_TTL',
      message:
        "pattern 'events' (producer) encryption.data_key_ttl must be longer than 0: no data key could be used",
      path: '/patterns/0/settings/encryption/data_key_ttl',
      at: '0s',
    });
  });

  it('refuses data_key_max_messages on a consumer, which seals nothing', () => {
    expect(
      only(sessionNamespace([consumer({ key: 'transit/orders', data_key_max_messages: 10 })])),
    ).toMatchObject({
      rule: 'E_ENCRYPTION_NOT_APPLICABLE',
      message:
        "pattern 'billing' (consumer) sets encryption.data_key_max_messages, which bounds the data keys a producer seals with; a consumer only unwraps",
      path: '/patterns/0/settings/encryption/data_key_max_messages',
      at: 'data_key_max_messages: 10',
    });
  });

  it('refuses encryption on a keyvalue pattern', () => {
    expect(
      only(sessionNamespace([keyvaluePattern({ settings: { encryption: { key: 'transit/orders' } } })])),
    ).toMatchObject({
      rule: 'E_SETTING_NOT_APPLICABLE',
      message: "setting 'encryption' does not apply to keyvalue",
      hint: 'settings of keyvalue: default_ttl, max_value_size',
    });
  });
});
