/**
 * Master keys for encryption at rest. Fragments are encrypted with per-stream data keys (see
 * fragment-cipher.ts); the data keys are stored wrapped (AES-256-GCM) by a master key, so rotating
 * a master key rewraps a few dozen bytes per stream and rewrites no media.
 *
 * Master keys have a name — a stream's `KmsKeyId` without its ARN prefix (`alias/aws/kinesisvideo`
 * by default) — and versions; the newest version of a name wraps new data keys, older versions
 * stay to unwrap what they wrapped until a rotation rewraps it.
 *
 * The keys come from a keyring file (JSON, mode 0600, created with a first key on first use; by
 * default `<data-dir>/keys/master-keys.json`), or from `OPENKVS_MASTER_KEY`: base64 32-byte keys,
 * comma-separated, newest first, one set used for every name (rotate by prepending a key).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export const DEFAULT_KEY_NAME = 'alias/aws/kinesisvideo';

export interface MasterKey {
  name: string;
  version: number;
  key: Buffer;
  createdAt: string;
}

/** A data key as stored: which master key version wrapped it, and nonce ‖ ciphertext ‖ tag. */
export interface WrappedKey {
  name: string;
  version: number;
  wrapped: Buffer;
}

const FileSchema = z.object({
  format: z.literal('openkvs-keyring-1'),
  keys: z.array(z.object({ name: z.string().min(1), version: z.number().int().min(1), key: z.string(), createdAt: z.string() }).strict()),
}).strict();

export const defaultKeyringFile = (dataDir: string): string => path.join(dataDir, 'keys', 'master-keys.json');

/** `arn:aws:kms:region:account:alias/x` → `alias/x`; `arn:…:key/id` → `key/id`; other ids as they are. */
export function keyNameOf(kmsKeyId: string | undefined): string {
  if (!kmsKeyId) return DEFAULT_KEY_NAME;
  const m = /^arn:[^:]+:kms:[^:]*:[^:]*:(.+)$/.exec(kmsKeyId);
  return m ? m[1]! : kmsKeyId;
}

const decodeKey = (text: string, where: string): Buffer => {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32) throw new Error(`${where}: a master key is 32 bytes in base64 (openssl rand -base64 32); got ${key.length} bytes`);
  return key;
};

export class Keyring {
  private keys: MasterKey[];

  private constructor(keys: MasterKey[], private readonly file: string | undefined) {
    this.keys = keys;
  }

  /** `OPENKVS_MASTER_KEY` when set (or given as `env`), else the file, created if missing. */
  static open(file: string, env: string | undefined = process.env.OPENKVS_MASTER_KEY): Keyring {
    if (env !== undefined && env.trim() !== '') {
      const list = env.split(',').map((k) => k.trim()).filter(Boolean);
      const now = new Date(0).toISOString();
      // Newest first in the variable; versions count up from the oldest.
      const keys = list.reverse().map((k, i) => ({ name: '*', version: i + 1, key: decodeKey(k, 'OPENKVS_MASTER_KEY'), createdAt: now }));
      return new Keyring(keys, undefined);
    }
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the keyring ${file}: ${(err as Error).message}`);
    }
    if (text === undefined) {
      const ring = new Keyring([], file);
      ring.addVersion(DEFAULT_KEY_NAME);
      return ring;
    }
    let parsed: z.infer<typeof FileSchema>;
    try {
      parsed = FileSchema.parse(JSON.parse(text));
    } catch (err) {
      throw new Error(`the keyring ${file} is not valid: ${(err as Error).message.slice(0, 300)}`);
    }
    return new Keyring(parsed.keys.map((k) => ({ ...k, key: decodeKey(k.key, file) })), file);
  }

  /** Whether keys come from a file (and can be added and rotated) or from the environment. */
  get source(): string {
    return this.file ?? 'OPENKVS_MASTER_KEY';
  }

  list(): readonly Omit<MasterKey, 'key'>[] {
    return this.keys.map(({ name, version, createdAt }) => ({ name, version, createdAt }));
  }

  /** The newest version of a name, created (and saved) on first use when keys come from a file. */
  active(name: string): MasterKey {
    let own = this.versionsOf(name);
    if (own.length === 0) {
      this.reload(); // another process (openkvs keys) may have added it
      own = this.versionsOf(name);
    }
    return own.length > 0 ? own[own.length - 1]! : this.addVersion(name);
  }

  /** Adds a new newest version of `name` and saves the keyring (atomically, fsynced) before returning. */
  addVersion(name: string): MasterKey {
    if (!this.file) throw new Error('master keys come from OPENKVS_MASTER_KEY: rotate by prepending a new key to it');
    const version = Math.max(0, ...this.versionsOf(name).map((k) => k.version)) + 1;
    const key: MasterKey = { name, version, key: randomBytes(32), createdAt: new Date().toISOString() };
    this.save([...this.keys, key]);
    this.keys.push(key);
    return key;
  }

  wrap(dataKey: Buffer, name: string): WrappedKey {
    const master = this.active(name);
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', master.key, nonce);
    cipher.setAAD(Buffer.from(`openkvs-data-key:${master.name}:${master.version}`));
    const body = Buffer.concat([cipher.update(dataKey), cipher.final()]);
    return { name: master.name, version: master.version, wrapped: Buffer.concat([nonce, body, cipher.getAuthTag()]) };
  }

  unwrap(w: WrappedKey): Buffer {
    const find = () => this.versionsOf(w.name).find((k) => k.version === w.version);
    let master = find();
    if (!master) {
      this.reload(); // rotated by `openkvs keys rotate` since this process read the keyring
      master = find();
    }
    if (!master) throw new Error(`master key ${w.name} version ${w.version} is not in ${this.source}`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', master.key, w.wrapped.subarray(0, 12));
      decipher.setAAD(Buffer.from(`openkvs-data-key:${master.name}:${master.version}`));
      decipher.setAuthTag(w.wrapped.subarray(w.wrapped.length - 16));
      return Buffer.concat([decipher.update(w.wrapped.subarray(12, w.wrapped.length - 16)), decipher.final()]);
    } catch {
      throw new Error(`a data key wrapped by ${w.name} version ${w.version} does not unwrap: wrong master key or damaged keyring`);
    }
  }

  /** Re-reads the file (another process may have rotated a key); no-op for the environment. */
  reload(): void {
    if (this.file) this.keys = Keyring.open(this.file, '').keys;
  }

  private versionsOf(name: string): MasterKey[] {
    return this.keys.filter((k) => k.name === name || k.name === '*').sort((a, b) => a.version - b.version);
  }

  private save(keys: MasterKey[]): void {
    const file = this.file!;
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const body = JSON.stringify({ format: 'openkvs-keyring-1', keys: keys.map((k) => ({ ...k, key: k.key.toString('base64') })) }, null, 2);
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, body);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    const dir = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}
