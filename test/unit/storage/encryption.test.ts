/**
 * Encryption at rest in the fragment store: sealed fragments read back as appended, the data
 * files hold none of the plaintext, a changed byte is refused, keys are per stream and per
 * KmsKeyId, rotation rewraps data keys without touching data files, and a deleted stream's key goes.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../lib/service/storage/database.js';
import { DataKeys, IntegrityError, SEAL_OVERHEAD } from '../../../lib/service/storage/fragment-cipher.js';
import { FragmentStore } from '../../../lib/service/storage/fragment-store.js';
import { DEFAULT_KEY_NAME, Keyring, keyNameOf } from '../../../lib/service/storage/keyring.js';
import { HOUR, makeFragment, makeTempDir, memoryLog, removeDir, sha1 } from './fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(() => removeDir(dir));

async function open(kms: Record<number, string> = {}, env?: string) {
  const db = openDatabase(join(dir, 'index.db'));
  const keyring = Keyring.open(join(dir, 'keys', 'master-keys.json'), env ?? '');
  const dataKeys = new DataKeys(db, keyring, (id) => kms[id]);
  const log = memoryLog();
  const store = await FragmentStore.open({ dataDir: dir, db, retentionMs: () => HOUR, dataKeys, log });
  return { db, keyring, dataKeys, store, log, close: async () => { await store.close(); db.close(); } };
}

describe('encryption at rest', () => {
  it('reads sealed fragments back as appended; the data file holds no plaintext', async () => {
    const o = await open();
    const a = makeFragment(o.store, 1, { size: 20_000 });
    const stored = await o.store.append(a.input);
    expect(stored.sizeBytes).toBe(20_000);
    expect(stored.length).toBe(20_000 + SEAL_OVERHEAD);
    expect(stored.keyId).toBeDefined();
    expect(sha1(await o.store.read(stored))).toBe(sha1(a.bytes));
    const file = readFileSync(join(dir, 'streams', '1', `${stored.fileId}.frag`));
    // No 16-byte run of the plaintext appears in the file.
    for (let at = 0; at + 16 <= a.bytes.length; at += 997) expect(file.includes(a.bytes.subarray(at, at + 16))).toBe(false);
    expect(statSync(join(dir, 'keys', 'master-keys.json')).mode & 0o777).toBe(0o600);
    await o.close();
    // After a restart (keys unwrapped from the index and the keyring file) it still reads.
    const again = await open();
    expect(sha1(await again.store.read(again.store.get(1, stored.seq)!))).toBe(sha1(a.bytes));
    await again.close();
  });

  it('refuses a fragment with one changed byte, logging the file and offset, and serves the others', async () => {
    const o = await open();
    const a = await o.store.append(makeFragment(o.store, 1).input);
    const b = makeFragment(o.store, 1);
    const bStored = await o.store.append(b.input);
    const path = join(dir, 'streams', '1', `${a.fileId}.frag`);
    const bytes = readFileSync(path);
    bytes[a.offset + 100]! ^= 0x01;
    writeFileSync(path, bytes);
    await o.close();
    const again = await open();
    await expect(again.store.read(again.store.get(1, a.seq)!)).rejects.toThrow(IntegrityError);
    await expect(again.store.read(again.store.get(1, a.seq)!)).rejects.toThrow(/failed its integrity check/);
    expect(again.log.entries.find((e) => e.level === 'error')?.obj).toMatchObject({ fragment: a.fragmentNumber, offset: a.offset });
    expect(sha1(await again.store.read(again.store.get(1, bStored.seq)!))).toBe(sha1(b.bytes));
    await again.close();
  });

  it('uses one data key per stream, wrapped by the master key its KmsKeyId names', async () => {
    const o = await open({ 2: 'arn:aws:kms:us-east-1:000000000000:alias/cameras' });
    const one = await o.store.append(makeFragment(o.store, 1).input);
    const two = await o.store.append(makeFragment(o.store, 2).input);
    expect(one.keyId).not.toBe(two.keyId);
    const rows = o.db.prepare('SELECT stream_id, key_name, key_version FROM data_keys ORDER BY stream_id').all();
    expect(rows).toEqual([
      { stream_id: 1, key_name: DEFAULT_KEY_NAME, key_version: 1 },
      { stream_id: 2, key_name: 'alias/cameras', key_version: 1 },
    ]);
    expect(o.keyring.list().map((k) => k.name).sort()).toEqual(['alias/aws/kinesisvideo', 'alias/cameras']);
    expect(keyNameOf('arn:aws:kms:eu-west-1:123:key/1234abcd')).toBe('key/1234abcd');
    await o.close();
  });

  it('rotates a master key by rewrapping data keys; data files are not rewritten', async () => {
    const o = await open();
    const a = makeFragment(o.store, 1);
    const stored = await o.store.append(a.input);
    const file = join(dir, 'streams', '1', `${stored.fileId}.frag`);
    const before = sha1(readFileSync(file));
    o.keyring.addVersion(DEFAULT_KEY_NAME);
    expect(o.dataKeys.rewrapAll()).toBe(1);
    expect(o.dataKeys.rewrapAll()).toBe(0);
    expect(o.db.prepare('SELECT key_version FROM data_keys').pluck().get()).toBe(2);
    await o.close();
    expect(sha1(readFileSync(file))).toBe(before);
    const again = await open();
    expect(sha1(await again.store.read(again.store.get(1, stored.seq)!))).toBe(sha1(a.bytes));
    await again.close();
  });

  it('takes master keys from OPENKVS_MASTER_KEY (newest first) and refuses a wrong one', async () => {
    const k1 = Buffer.alloc(32, 1).toString('base64');
    const k2 = Buffer.alloc(32, 2).toString('base64');
    const o = await open({}, k1);
    const a = makeFragment(o.store, 1);
    const stored = await o.store.append(a.input);
    await o.close();
    const rotated = await open({}, `${k2},${k1}`);
    expect(rotated.dataKeys.rewrapAll()).toBe(1);
    expect(sha1(await rotated.store.read(rotated.store.get(1, stored.seq)!))).toBe(sha1(a.bytes));
    await rotated.close();
    const k3 = Buffer.alloc(32, 3).toString('base64');
    const missing = await open({}, k3);
    await expect(missing.store.read(missing.store.get(1, stored.seq)!)).rejects.toThrow(/cannot be opened: master key .* version 2 is not in OPENKVS_MASTER_KEY/);
    await missing.close();
    const wrong = await open({}, `${k3},${k1}`);
    await expect(wrong.store.read(wrong.store.get(1, stored.seq)!)).rejects.toThrow(/does not unwrap: wrong master key/);
    await wrong.close();
    expect(() => Keyring.open(join(dir, 'x.json'), 'c2hvcnQ=')).toThrow(/32 bytes/);
  });

  it("deletes a stream's data key with the stream", async () => {
    const o = await open();
    await o.store.append(makeFragment(o.store, 1).input);
    await o.store.deleteStream(1);
    expect(o.db.prepare('SELECT COUNT(*) FROM data_keys').pluck().get()).toBe(0);
    await o.close();
  });
});
