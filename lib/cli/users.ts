/**
 * `openkvs users add|list|remove|policy|credentials`: the identities of a server's data dir
 * (lib/service/auth/identities.ts). Safe while the server runs: it reads users per request.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { IdentityStore } from '../service/auth/identities.js';
import { ADMIN_POLICY, type Policy, parsePolicy } from '../service/auth/policy.js';
import { openDatabase } from '../service/storage/database.js';
import { defaultKeyringFile, Keyring } from '../service/storage/keyring.js';

export interface UsersOptions {
  dataDir: string;
  keyring?: string;
}

function withStore<T>(o: UsersOptions, fn: (store: IdentityStore) => T): T {
  const dir = path.resolve(o.dataDir);
  const db = openDatabase(path.join(dir, 'index.sqlite'));
  try {
    return fn(new IdentityStore(db, Keyring.open(o.keyring ?? defaultKeyringFile(dir))));
  } finally {
    db.close();
  }
}

/** A policy from --policy FILE, --allow "ACTION[,ACTION]:STREAM-PATTERN" shorthands, or full access. */
export function policyFrom(flags: { policy?: string; allow?: string[] }): Policy {
  if (flags.policy !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.policy, 'utf8');
    } catch (err) {
      throw new Error(`cannot read the policy file ${flags.policy}: ${(err as Error).message}`);
    }
    return parsePolicy(text);
  }
  if (flags.allow && flags.allow.length > 0) {
    return parsePolicy({
      Version: '2012-10-17',
      Statement: flags.allow.map((rule) => {
        const colon = rule.lastIndexOf(':');
        if (colon <= 0) throw new Error(`--allow takes ACTIONS:STREAMS, e.g. PutMedia,DescribeStream,GetDataEndpoint:door-*; got "${rule}"`);
        const actions = rule.slice(0, colon).split(',').map((a) => (a.includes(':') ? a : `kinesisvideo:${a}`));
        const streams = rule.slice(colon + 1);
        return { Effect: 'Allow', Action: actions, Resource: streams === '*' ? '*' : `arn:aws:kinesisvideo:*:*:stream/${streams}` };
      }),
    });
  }
  return ADMIN_POLICY;
}

export function addUser(o: UsersOptions & { name: string; policy?: string; allow?: string[] }): string {
  const policy = policyFrom(o);
  const c = withStore(o, (s) => s.addUser(o.name, policy));
  return [
    `user ${o.name} added; its secret is shown only now:`,
    `AWS_ACCESS_KEY_ID=${c.accessKeyId}`,
    `AWS_SECRET_ACCESS_KEY=${c.secretAccessKey}`,
    '',
  ].join('\n');
}

export function listUsers(o: UsersOptions): string {
  const users = withStore(o, (s) => s.listUsers());
  if (users.length === 0) return 'no users (the server accepts unsigned requests unless started with --access-key)\n';
  return `${users.map((u) => `${u.name.padEnd(24)}${u.accessKeyId}  ${u.createdAt}  ${JSON.stringify(u.policy.Statement)}`).join('\n')}\n`;
}

export function removeUser(o: UsersOptions & { name: string }): string {
  const removed = withStore(o, (s) => s.removeUser(o.name));
  if (!removed) throw new Error(`no user ${o.name}`);
  return `user ${o.name} removed, with its temporary credentials\n`;
}

export function setPolicy(o: UsersOptions & { name: string; policy?: string; allow?: string[] }): string {
  const policy = policyFrom(o);
  withStore(o, (s) => s.setPolicy(o.name, policy));
  return `policy of ${o.name} set\n`;
}

/** Temporary credentials as JSON ({ AccessKeyId, SecretAccessKey, SessionToken, Expiration }). */
export function issueCredentials(o: UsersOptions & { name: string; durationS: number; policy?: string; allow?: string[] }): string {
  const scope = o.policy !== undefined || (o.allow?.length ?? 0) > 0 ? policyFrom(o) : undefined;
  const c = withStore(o, (s) => s.issueSession(o.name, o.durationS, scope));
  return `${JSON.stringify({ AccessKeyId: c.accessKeyId, SecretAccessKey: c.secretAccessKey, SessionToken: c.sessionToken, Expiration: c.expiration.toISOString() }, null, 2)}\n`;
}
