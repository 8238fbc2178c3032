/**
 * `POST /issueCredentials` (openkvs's own operation, signed like the others): temporary
 * credentials for the signing user — access key id, secret, session token and expiration, the
 * shape every AWS credential provider returns — optionally narrowed by a scope-down policy, for
 * devices and the web console. Only a user's own access key may ask (not temporary credentials).
 */
import { z } from 'zod';
import { invalidArgument } from '../../errors.js';
import type { ServiceContext } from '../context.js';
import { parseInput } from '../validation.js';
import { MAX_SESSION_S, MIN_SESSION_S, type Principal } from './identities.js';
import { parsePolicy } from './policy.js';

const Input = z.strictObject({
  DurationSeconds: z.number().int().min(MIN_SESSION_S).max(MAX_SESSION_S).optional(),
  /** A policy document (JSON text): the credentials may do only what it and the user's policy both allow. */
  Policy: z.string().min(1).max(10_240).optional(),
});

export function issueCredentials(ctx: ServiceContext, signer: Principal | undefined, input: unknown): object {
  const body = parseInput(Input, input);
  if (!signer) throw invalidArgument('This server does not check signatures: any credentials are accepted, none need issuing.');
  if (!ctx.identities.lookupUser(signer.user)) throw invalidArgument(`Credentials are issued to users (openkvs users add); ${signer.accessKeyId} is a --access-key key.`);
  let scope;
  if (body.Policy !== undefined) {
    try {
      scope = parsePolicy(body.Policy);
    } catch (err) {
      throw invalidArgument(`Invalid value for Policy: ${(err as Error).message}.`);
    }
  }
  const c = ctx.identities.issueSession(signer.user, body.DurationSeconds ?? 3600, scope);
  ctx.log.info({ user: signer.user, accessKeyId: c.accessKeyId, expiration: c.expiration }, 'temporary credentials issued');
  return {
    Credentials: {
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secretAccessKey,
      SessionToken: c.sessionToken,
      Expiration: c.expiration.getTime() / 1000,
    },
  };
}
