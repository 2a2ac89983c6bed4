/**
 * A view of a keyvalue driver that keeps its keys under a fixed prefix, so that several users of
 * one backend and namespace (two keyvalue patterns, or a keyvalue pattern beside a producer's
 * dedup keys) never see each other's keys. Scans return keys without the prefix, in the same
 * order (a constant prefix does not change key order); cursors pass through unchanged.
 */
import type { AnyDriver, KeyValueStore, ScanPage, ScanStore, TtlStore } from './interfaces.js';

type Kv = AnyDriver & KeyValueStore & Partial<TtlStore & ScanStore>;

export function scopeKeys<D extends Kv>(driver: D, prefix: string): D {
  const k = (key: string) => prefix + key;
  const view: Kv = Object.create(driver) as Kv;
  view.set = (key, value, ttlMs) => driver.set(k(key), value, ttlMs);
  view.get = (key) => driver.get(k(key));
  view.delete = (key) => driver.delete(k(key));
  view.exists = (key) => driver.exists(k(key));
  // Set on the view either way: inherited from the driver they would skip the prefix.
  view.getMany = driver.getMany && ((keys) => driver.getMany!(keys.map(k)));
  view.setMany =
    driver.setMany && ((items) => driver.setMany!(items.map((item) => ({ ...item, key: k(item.key) }))));
  if (driver.expire && driver.ttl && driver.persist) {
    view.expire = (key, ttlMs) => driver.expire!(k(key), ttlMs);
    view.ttl = (key) => driver.ttl!(k(key));
    view.persist = (key) => driver.persist!(k(key));
  }
  if (driver.scan) {
    view.scan = async (scanPrefix, options): Promise<ScanPage> => {
      const page = await driver.scan!(k(scanPrefix), options);
      const keys = page.keys.map((key) => key.slice(prefix.length));
      return page.cursor === undefined ? { keys } : { keys, cursor: page.cursor };
    };
  }
  return view as D;
}
