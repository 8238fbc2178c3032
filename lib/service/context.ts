/** What every operation handler receives: configuration and the server's long-lived parts. */
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { FragmentStore } from './storage/fragment-store.js';
import type { StreamCatalog } from './control-plane/stream-catalog.js';
import type { IngestBudget } from './ingest/ingest-budget.js';
import type { LiveHub } from './media/live-hub.js';
import type { Authorizer } from './auth/authorizer.js';
import type { IdentityStore } from './auth/identities.js';
import type { RateLimiter } from './limits/rate-limiter.js';

export interface ServiceLimits {
  /** Largest fragment accepted by PutMedia, bytes (service: 50 MB, error 4001). */
  maxFragmentBytes: number;
  /** Longest fragment accepted by PutMedia, ms (service: 10 s, error 4002). */
  maxFragmentDurationMs: number;
  /** How far in the future a producer timestamp may be, ms (error 4007). */
  maxFutureMs: number;
  /** Bytes of received fragments waiting for storage, all connections together; beyond it PutMedia stops reading. */
  maxIngestQueueBytes: number;
  /** PutMedia sends IDLE acks this often while no media arrives, ms. */
  idleAckIntervalMs: number;
  /** PutMedia ends the response after this long without body bytes, ms (service: 30 s). */
  putMediaIdleTimeoutMs: number;
  /** Concurrent GetMedia connections per stream (ConnectionLimitExceededException beyond). */
  maxGetMediaConnections: number;
  /** GetMedia closes a session after this long, ms (service: ~45 min). */
  getMediaMaxDurationMs: number;
  /** How much data retention-0 streams keep for live readers, ms (service: 5 min). */
  liveBufferMs: number;
  /** A request's headers must arrive within this, ms (slow-loris). */
  headersTimeoutMs: number;
  /** The body of a request other than PutMedia must arrive within this, ms. */
  requestBodyTimeoutMs: number;
  /** Requests per second per stream and operation (ClientLimitExceededException beyond); 0: no limit. */
  streamRequestsPerSecond: number;
  /** ...with bursts of up to this many. */
  streamRequestBurst: number;
}

export const DEFAULT_LIMITS: ServiceLimits = {
  maxFragmentBytes: 50 * 1000 * 1000,
  maxFragmentDurationMs: 10_000,
  maxFutureMs: 10 * 60_000,
  maxIngestQueueBytes: 256 * 1024 * 1024,
  idleAckIntervalMs: 3_000,
  putMediaIdleTimeoutMs: 30_000,
  maxGetMediaConnections: 100,
  getMediaMaxDurationMs: 45 * 60_000,
  liveBufferMs: 5 * 60_000,
  headersTimeoutMs: 10_000,
  requestBodyTimeoutMs: 10_000,
  streamRequestsPerSecond: 50,
  streamRequestBurst: 100,
};

export interface ServiceConfig {
  region: string;
  accountId: string;
  /** Base URL of this server, scheme://host:port, no trailing slash; known once listening. */
  url: string;
  /** The URL clients reach the server at when it differs from what they send as Host. */
  publicUrl?: string;
  limits: ServiceLimits;
}

export interface ServiceContext {
  config: ServiceConfig;
  log: Logger;
  db: Database.Database;
  store: FragmentStore;
  streams: StreamCatalog;
  live: LiveHub;
  ingestBudget: IngestBudget;
  /** Authentication and per-stream access: call `check` before serving a request. */
  auth: Authorizer;
  identities: IdentityStore;
  rateLimiter: RateLimiter;
}
