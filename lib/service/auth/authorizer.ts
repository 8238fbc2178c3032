/**
 * Who may call what. A server is open (any or no signature accepted, producer-protocol.md §13.2)
 * until it has access keys: `--access-key` keys (full access) or users (identities.ts). Then every
 * request must be SigV4-signed by a known key; temporary credentials also need their session
 * token and must not be expired; a signature seen before is refused (replay); and the signer's
 * policies must allow the operation's action on the stream's ARN (policy.ts), deny by default.
 * Every refusal is logged (warn) with the access key, operation and reason.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { KvsApiError } from '../../errors.js';
import type { StreamCatalog } from '../control-plane/stream-catalog.js';
import { type IdentityStore, type Principal, sha256 } from './identities.js';
import { ADMIN_POLICY, evaluate } from './policy.js';
import { type AccessKeys, MAX_SKEW_MS, type SignedRequest, verifySignature } from './sigv4-verifier.js';

/** What an operation is about: the members that name a stream or resource. */
export interface OperationTarget {
  StreamName?: unknown;
  StreamARN?: unknown;
  ResourceARN?: unknown;
}

/** Operations that act on no single stream: their resource is `*`. */
const ACCOUNT_OPERATIONS = new Set(['ListStreams']);

const REPLAY_CACHE_MAX = 500_000;

export interface AuthorizerOptions {
  staticKeys?: AccessKeys;
  identities?: IdentityStore;
  streams: StreamCatalog;
  region: string;
  accountId: string;
  log: Logger;
}

export class Authorizer {
  /** Signatures already used, with when they can no longer be replayed (signed time + skew). */
  private readonly seen = new Map<string, number>();

  constructor(private readonly o: AuthorizerOptions) {}

  /** Whether requests must be signed. */
  required(): boolean {
    return this.o.staticKeys !== undefined || (this.o.identities?.authRequired() ?? false);
  }

  /**
   * Authenticates and authorizes one request for `operation` (its action name, e.g. `GetMedia`).
   * Returns the signer (undefined on an open server) or throws the KvsApiError the SDK names.
   */
  check(req: SignedRequest & { remoteAddress?: string }, operation: string, target: OperationTarget = {}): Principal | undefined {
    if (!this.required()) return undefined;
    let principal: Principal | undefined;
    try {
      principal = this.authenticate(req);
      this.authorize(principal, operation, target);
      return principal;
    } catch (err) {
      if (err instanceof KvsApiError) {
        this.o.log.warn(
          { code: err.code, operation, accessKeyId: principal?.accessKeyId ?? accessKeyOf(req), user: principal?.user, remote: req.remoteAddress, reason: err.message },
          'request refused',
        );
      }
      throw err;
    }
  }

  private authenticate(req: SignedRequest, now = Date.now()): Principal {
    const { key, signature, signedAtMs } = verifySignature(req, (id) => this.lookup(id), now);
    if (key.sessionTokenSha256 !== undefined) {
      const token = req.headers['x-amz-security-token'];
      const given = typeof token === 'string' ? Buffer.from(sha256(token), 'hex') : undefined;
      if (!given || !timingSafeEqual(given, Buffer.from(key.sessionTokenSha256, 'hex'))) {
        throw new KvsApiError('UnrecognizedClientException', 'The security token included in the request is invalid.');
      }
      if (key.expiresMs !== undefined && key.expiresMs <= now) {
        throw new KvsApiError('ExpiredTokenException', `The security token included in the request is expired (at ${new Date(key.expiresMs).toISOString()}).`);
      }
    }
    this.rememberSignature(signature, signedAtMs + MAX_SKEW_MS, now);
    return key;
  }

  private authorize(p: Principal, operation: string, target: OperationTarget): void {
    if (operation === 'IssueCredentials' && p.sessionTokenSha256 !== undefined) {
      throw new KvsApiError('AccessDeniedException', 'Temporary credentials cannot issue credentials: sign with the access key of a user.');
    }
    // Like sts:GetSessionToken, asking for one's own temporary credentials needs no permission.
    if (operation === 'IssueCredentials') return;
    const action = `kinesisvideo:${operation}`;
    const resource = this.resourceOf(operation, target);
    const decisions = p.policies.map((policy) => evaluate(policy, action, resource));
    if (decisions.every((d) => d === 'allow')) return;
    const why = decisions.includes('deny') ? 'an explicit deny in' : 'no allow in';
    throw new KvsApiError('AccessDeniedException', `User ${p.user} is not authorized to perform ${action} on resource ${resource} (${why} its policy).`);
  }

  /** The ARN a request is about: the stream's, or (for a stream not created yet) `…:stream/NAME/*`. */
  private resourceOf(operation: string, t: OperationTarget): string {
    if (ACCOUNT_OPERATIONS.has(operation)) return '*';
    if (typeof t.StreamARN === 'string') return t.StreamARN;
    if (typeof t.ResourceARN === 'string') return t.ResourceARN;
    if (typeof t.StreamName === 'string') {
      return this.o.streams.byName(t.StreamName)?.arn ?? `arn:aws:kinesisvideo:${this.o.region}:${this.o.accountId}:stream/${t.StreamName}/*`;
    }
    return '*';
  }

  private lookup(accessKeyId: string): Principal | undefined {
    const secret = this.o.staticKeys?.[accessKeyId];
    if (secret !== undefined) return { user: accessKeyId, accessKeyId, secretAccessKey: secret, policies: [ADMIN_POLICY] };
    return this.o.identities?.lookup(accessKeyId);
  }

  private rememberSignature(signature: string, until: number, now: number): void {
    const seenUntil = this.seen.get(signature);
    if (seenUntil !== undefined && seenUntil > now) {
      throw new KvsApiError('InvalidSignatureException', 'This request was received before (a replayed signature); sign each request afresh.');
    }
    if (this.seen.size >= REPLAY_CACHE_MAX) {
      // Oldest first (insertion order): drop what can no longer be replayed, then the oldest.
      for (const [sig, t] of this.seen) {
        if (t > now && this.seen.size < REPLAY_CACHE_MAX) break;
        this.seen.delete(sig);
      }
    }
    this.seen.set(signature, until);
  }
}

function accessKeyOf(req: SignedRequest): string | undefined {
  const auth = req.headers.authorization;
  return typeof auth === 'string' ? /Credential=([^/\s,]+)/.exec(auth)?.[1] : undefined;
}
