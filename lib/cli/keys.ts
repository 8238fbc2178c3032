/**
 * `openkvs keys list|rotate`: the master keys that wrap the streams' data keys (encryption at
 * rest). Rotation adds a new version of a master key, then rewraps every data key in one SQLite
 * transaction; media files are not rewritten, old versions stay in the keyring (a kill at any
 * point leaves every fragment readable). Safe while the server runs.
 */
import path from 'node:path';
import { openDatabase } from '../service/storage/database.js';
import { DataKeys } from '../service/storage/fragment-cipher.js';
import { defaultKeyringFile, Keyring } from '../service/storage/keyring.js';

export interface KeysOptions {
  dataDir: string;
  keyring?: string;
}

function openParts(o: KeysOptions) {
  const db = openDatabase(path.join(path.resolve(o.dataDir), 'index.sqlite'));
  const keyring = Keyring.open(o.keyring ?? defaultKeyringFile(path.resolve(o.dataDir)));
  const kmsOf = db.prepare<[number], string>('SELECT kms_key_id FROM streams WHERE id = ?').pluck();
  return { db, keyring, dataKeys: new DataKeys(db, keyring, (id) => kmsOf.get(id)) };
}

export function listKeys(o: KeysOptions): string {
  const { db, keyring } = openParts(o);
  try {
    const uses = new Map(
      db.prepare<[], { key_name: string; key_version: number; n: number }>('SELECT key_name, key_version, COUNT(*) AS n FROM data_keys GROUP BY key_name, key_version')
        .all()
        .map((r) => [`${r.key_name}#${r.key_version}`, r.n]),
    );
    const lines = [`master keys from ${keyring.source}`, 'name                              version  created                   data keys'];
    for (const k of keyring.list()) {
      lines.push(`${k.name.padEnd(34)}${String(k.version).padEnd(9)}${k.createdAt.padEnd(26)}${uses.get(`${k.name}#${k.version}`) ?? 0}`);
    }
    return `${lines.join('\n')}\n`;
  } finally {
    db.close();
  }
}

/** Adds a version of `name` (or of every name in use) and rewraps; returns a summary line. */
export function rotateKeys(o: KeysOptions & { name?: string }): string {
  const { db, keyring, dataKeys } = openParts(o);
  try {
    const names = o.name ? [o.name] : [...new Set(keyring.list().map((k) => k.name))];
    const added = keyring.source === 'OPENKVS_MASTER_KEY' ? [] : names.map((n) => keyring.addVersion(n));
    const rewrapped = dataKeys.rewrapAll();
    const what = added.length > 0 ? added.map((k) => `${k.name} is now version ${k.version}`).join(', ') : 'keys from OPENKVS_MASTER_KEY';
    return `${what}; rewrapped ${rewrapped} data key${rewrapped === 1 ? '' : 's'} (media files unchanged)\n`;
  } finally {
    db.close();
  }
}
