/**
 * Users, their access keys and policies, and temporary credentials, in the server's SQLite file.
 *
 * SigV4 is an HMAC keyed by the secret itself, so a server must be able to recover each secret:
 * secrets cannot be stored as one-way hashes. They are stored sealed (AES-256-GCM) by the master
 * key `openkvs/identities` of the keyring that also protects media (keyring.ts); the database
 * alone does not reveal them. Session tokens are only ever compared, so they are stored as
 * SHA-256 hashes.
 *
 * Once a first user exists the server requires signatures for good (`auth_required` setting):
 * removing every user leaves a server nobody can use, never an open one.
 */
import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Keyring } from '../storage/keyring.js';
import { ADMIN_POLICY, type Policy, parsePolicy } from './policy.js';

export const IDENTITY_KEY_NAME = 'openkvs/identities';

/** Who signed a request, and what they may do. */
export interface Principal {
  user: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Every one must allow an action (the user's policy, and a session's scope-down policy). */
  policies: Policy[];
  /** Temporary credentials: the hash of their session token, and when they expire. */
  sessionTokenSha256?: string;
  expiresMs?: number;
}

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export interface UserInfo {
  name: string;
  accessKeyId: string;
  policy: Policy;
  createdAt: string;
}

interface UserRow {
  name: string;
  access_key_id: string;
  secret: Buffer;
  key_version: number;
  policy: string;
  created_ms: number;
}

interface SessionRow {
  access_key_id: string;
  user_name: string;
  secret: Buffer;
  key_version: number;
  token_sha256: string;
  policy: string | null;
  expires_ms: number;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const keyId = (prefix: string): string => prefix + [...randomBytes(16)].map((b) => ALNUM[b % 32]).join('');
const newSecret = (): string => randomBytes(30).toString('base64').replace(/\+/g, 'x').replace(/\//g, 'y');
export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export const MIN_SESSION_S = 900;
export const MAX_SESSION_S = 12 * 3600;

const USER_NAME = /^[A-Za-z0-9+=,.@_-]{1,64}$/;

export class IdentityStore {
  private readonly sql;

  constructor(private readonly db: Database.Database, private readonly keyring: Keyring) {
    this.sql = {
      flag: db.prepare<[], string>("SELECT value FROM settings WHERE key = 'auth_required'").pluck(),
      setFlag: db.prepare("INSERT OR REPLACE INTO settings (key, value) VALUES ('auth_required', '1')"),
      user: db.prepare<[string], UserRow>('SELECT * FROM users WHERE name = ?'),
      userByKey: db.prepare<[string], UserRow>('SELECT * FROM users WHERE access_key_id = ?'),
      users: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY name'),
      insertUser: db.prepare('INSERT INTO users (name, access_key_id, secret, key_version, policy, created_ms) VALUES (?, ?, ?, ?, ?, ?)'),
      deleteUser: db.prepare('DELETE FROM users WHERE name = ?'),
      deleteSessionsOf: db.prepare('DELETE FROM sessions WHERE user_name = ?'),
      setPolicy: db.prepare('UPDATE users SET policy = ? WHERE name = ?'),
      session: db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE access_key_id = ?'),
      insertSession: db.prepare('INSERT INTO sessions (access_key_id, user_name, secret, key_version, token_sha256, policy, expires_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      deleteExpired: db.prepare('DELETE FROM sessions WHERE expires_ms < ?'),
    };
  }

  /** Whether requests must be signed by a user (true once any user was ever added). */
  authRequired(): boolean {
    return this.sql.flag.get() === '1';
  }

  addUser(name: string, policy: Policy = ADMIN_POLICY): IssuedCredentials {
    if (!USER_NAME.test(name)) throw new Error(`a user name is 1-64 of A-Z a-z 0-9 + = , . @ _ - (got "${name}")`);
    if (this.sql.user.get(name)) throw new Error(`user ${name} exists already (openkvs users remove ${name} first)`);
    const accessKeyId = keyId('OKIA');
    const secretAccessKey = newSecret();
    const sealed = this.keyring.wrap(Buffer.from(secretAccessKey), IDENTITY_KEY_NAME);
    this.db.transaction(() => {
      this.sql.insertUser.run(name, accessKeyId, sealed.wrapped, sealed.version, JSON.stringify(policy), Date.now());
      this.sql.setFlag.run();
    })();
    return { accessKeyId, secretAccessKey };
  }

  removeUser(name: string): boolean {
    return this.db.transaction(() => {
      this.sql.deleteSessionsOf.run(name);
      return this.sql.deleteUser.run(name).changes > 0;
    })();
  }

  setPolicy(name: string, policy: Policy): void {
    if (this.sql.setPolicy.run(JSON.stringify(policy), name).changes === 0) throw new Error(`no user ${name}`);
  }

  lookupUser(name: string): UserInfo | undefined {
    const r = this.sql.user.get(name);
    return r && { name: r.name, accessKeyId: r.access_key_id, policy: parsePolicy(r.policy), createdAt: new Date(r.created_ms).toISOString() };
  }

  listUsers(): UserInfo[] {
    return this.sql.users.all().map((r) => ({ name: r.name, accessKeyId: r.access_key_id, policy: parsePolicy(r.policy), createdAt: new Date(r.created_ms).toISOString() }));
  }

  /** Temporary credentials for a user, optionally narrowed by a scope-down policy. */
  issueSession(userName: string, durationS: number, scope?: Policy, now = Date.now()): Required<IssuedCredentials> {
    if (!this.sql.user.get(userName)) throw new Error(`no user ${userName}`);
    if (!Number.isInteger(durationS) || durationS < MIN_SESSION_S || durationS > MAX_SESSION_S) {
      throw new Error(`a session lasts ${MIN_SESSION_S}-${MAX_SESSION_S} seconds (got ${durationS})`);
    }
    const accessKeyId = keyId('OSIA');
    const secretAccessKey = newSecret();
    const sessionToken = randomBytes(48).toString('base64');
    const sealed = this.keyring.wrap(Buffer.from(secretAccessKey), IDENTITY_KEY_NAME);
    const expiresMs = now + durationS * 1000;
    this.sql.deleteExpired.run(now);
    this.sql.insertSession.run(accessKeyId, userName, sealed.wrapped, sealed.version, sha256(sessionToken), scope ? JSON.stringify(scope) : null, expiresMs, now);
    return { accessKeyId, secretAccessKey, sessionToken, expiration: new Date(expiresMs) };
  }

  /** The principal of an access key id (a user's or a session's), if any. Expired sessions are returned: the caller says so. */
  lookup(accessKeyId: string): Principal | undefined {
    const user = this.sql.userByKey.get(accessKeyId);
    if (user) {
      return { user: user.name, accessKeyId, secretAccessKey: this.open(user.secret, user.key_version), policies: [parsePolicy(user.policy)] };
    }
    const s = this.sql.session.get(accessKeyId);
    if (!s) return undefined;
    const owner = this.sql.user.get(s.user_name);
    if (!owner) return undefined;
    return {
      user: s.user_name,
      accessKeyId,
      secretAccessKey: this.open(s.secret, s.key_version),
      policies: [parsePolicy(owner.policy), ...(s.policy ? [parsePolicy(s.policy)] : [])],
      sessionTokenSha256: s.token_sha256,
      expiresMs: s.expires_ms,
    };
  }

  private open(sealed: Buffer, version: number): string {
    return this.keyring.unwrap({ name: IDENTITY_KEY_NAME, version, wrapped: sealed }).toString();
  }
}
