/**
 * The openkvs server: one HTTP listener answering the Kinesis Video Streams control-plane, media
 * and archived-media operations exactly as the AWS SDK v3 clients and kvssink send them.
 *
 * PutMedia is a full-duplex request (the ACK stream is written while the MKV body is still
 * arriving), so it is taken off the raw Node server before fastify parses bodies; every other
 * operation goes through fastify (`POST /*`, dispatched on the last path segment).
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import Fastify, { type FastifyReply } from 'fastify';
import { pino, type Logger } from 'pino';
import { KvsApiError } from '../errors.js';
import { DEFAULT_LIMITS, type ServiceConfig, type ServiceContext, type ServiceLimits } from './context.js';
import { controlPlaneOperations } from './control-plane/operations.js';
import { StreamCatalog } from './control-plane/stream-catalog.js';
import { archiveOperations } from './archive/operations.js';
import { playbackOperations, registerPlaybackRoutes } from './playback/index.js';
import { registerConsole } from './console/index.js';
import { IngestBudget } from './ingest/ingest-budget.js';
import { handlePutMedia } from './ingest/put-media.js';
import { getMedia } from './media/get-media.js';
import { LiveHub } from './media/live-hub.js';
import type { OperationTable } from './operations.js';
import type { AccessKeys } from './auth/sigv4-verifier.js';
import { Authorizer, type OperationTarget } from './auth/authorizer.js';
import { IdentityStore } from './auth/identities.js';
import { issueCredentials } from './auth/operations.js';
import { RateLimiter } from './limits/rate-limiter.js';
import { openDatabase } from './storage/database.js';
import { FragmentStore } from './storage/fragment-store.js';
import { DataKeys, IntegrityError } from './storage/fragment-cipher.js';
import { defaultKeyringFile, Keyring } from './storage/keyring.js';
import { autoTls, loadTls, type TlsFiles, type TlsMaterial } from './tls.js';

export interface ServerOptions {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 4567; 0 picks a free port). */
  port?: number;
  /** Where fragments and the index live (default ./openkvs-data). */
  dataDir?: string;
  /** Region reported in ARNs (default us-east-1). */
  region?: string;
  /** Account id reported in ARNs (default 000000000000). */
  accountId?: string;
  /** A pino logger; by default one is created at `logLevel`. */
  logger?: Logger;
  /** Log level of the default logger (default info). */
  logLevel?: string;
  /** Service limits; defaults follow the AWS service. */
  limits?: Partial<ServiceLimits>;
  /** How often retention is enforced, ms (default 60 s). */
  sweepIntervalMs?: number;
  /**
   * Access key id -> secret access key. When given, every request must carry a valid SigV4
   * signature by one of these keys (403 otherwise); by default signatures are not checked.
   */
  accessKeys?: AccessKeys;
  /**
   * Serve HTTPS: certificate and key files, or 'auto' for a self-signed certificate kept in
   * `<dataDir>/tls/` (made on first start). By default the server speaks plain HTTP.
   */
  tls?: TlsFiles | 'auto';
  /**
   * Encryption at rest (on by default): fragment data is sealed with per-stream keys wrapped by
   * master keys from `keyringFile` (default `<dataDir>/keys/master-keys.json`, made on first
   * start) or from `OPENKVS_MASTER_KEY`. false stores new fragments as received (fragments sealed
   * before stay readable while the keyring is there).
   */
  encryption?: { keyringFile?: string } | false;
  /**
   * Listening on an interface other than loopback with no access keys and no users is refused
   * (anyone on the network could read and write every stream) unless this is true.
   */
  allowAnonymous?: boolean;
  /**
   * The URL clients reach the server at (e.g. https://kvs.example.com behind a TLS-terminating
   * proxy), returned by GetDataEndpoint and in HLS/DASH session URLs. By default those use the
   * Host the client sent, so cameras on the network are given the address they used.
   */
  publicUrl?: string;
}

export interface OpenKvsServer {
  /** Base URL, e.g. http://127.0.0.1:4567 — the endpoint for the AWS SDK clients and kvssink. */
  url: string;
  port: number;
  /** With TLS: the certificate file clients should trust (the generated one for 'auto'). */
  tlsCertFile?: string;
  /** Stops accepting requests, finishes or drops fragments in flight, closes readers and storage. */
  close(): Promise<void>;
}

const operations: OperationTable = {
  json: { ...controlPlaneOperations, ...archiveOperations.json, ...playbackOperations.json },
  streaming: { getMedia, ...archiveOperations.streaming, ...playbackOperations.streaming },
};

/** A Host header that is a plain host name or address with an optional port. */
const PLAIN_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function publicUrlOf(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`publicUrl ${JSON.stringify(url)} is not a URL; expected e.g. https://kvs.example.com`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash) {
    throw new Error(`publicUrl ${JSON.stringify(url)} must be an http:// or https:// URL without query or fragment`);
  }
  return u.href.replace(/\/+$/, '');
}

/**
 * See RequestInfo.baseUrl. The KVS producers (kvssink, the AWS producer SDKs) send Host without
 * a port, so a Host without one is given the port this server listens on.
 */
function baseUrlOf(config: ServiceConfig, host: string | undefined): string {
  if (config.publicUrl) return config.publicUrl;
  if (!host || !PLAIN_HOST.test(host)) return config.url;
  const listening = new URL(config.url);
  const hasPort = /:\d+$/.test(host);
  return `${listening.protocol}//${host}${hasPort || !listening.port ? '' : `:${listening.port}`}`;
}

const lastSegment = (url: string): string => {
  const p = url.split('?', 1)[0]!;
  return p.slice(p.lastIndexOf('/') + 1);
};

/** Headers and body of an API error as the AWS SDK maps them (service-api.md §1.5). */
export function errorResponse(err: unknown): { status: number; headers: Record<string, string>; body: string } {
  const e =
    err instanceof KvsApiError
      ? err
      : new KvsApiError('InternalFailure', err instanceof IntegrityError ? err.message : 'Internal server error.');
  return {
    status: e.status,
    headers: { 'content-type': 'application/json', 'x-amzn-errortype': e.code },
    body: JSON.stringify({ Message: e.message }),
  };
}

export function sendRawError(res: ServerResponse, err: unknown): void {
  const { status, headers, body } = errorResponse(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);

export async function startServer(options: ServerOptions = {}): Promise<OpenKvsServer> {
  const host = options.host ?? '127.0.0.1';
  const dataDir = path.resolve(options.dataDir ?? './openkvs-data');
  mkdirSync(dataDir, { recursive: true });
  const log = options.logger ?? pino({ level: options.logLevel ?? 'info' });
  const limits = { ...DEFAULT_LIMITS, ...options.limits };

  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const db = openDatabase(path.join(dataDir, 'index.sqlite'));
  const streams = new StreamCatalog(db, { region, accountId });
  const seal = options.encryption !== false;
  const keyringFile = (options.encryption || undefined)?.keyringFile ?? defaultKeyringFile(dataDir);
  // The keyring seals media (unless encryption is off) and always the users' secrets.
  const keyring = Keyring.open(keyringFile);
  const identities = new IdentityStore(db, keyring);
  const staticKeys = options.accessKeys && Object.keys(options.accessKeys).length > 0 ? options.accessKeys : undefined;
  const auth = new Authorizer({ ...(staticKeys ? { staticKeys } : {}), identities, streams, region, accountId, log });
  if (!isLoopback(host) && !auth.required() && !options.allowAnonymous) {
    db.close();
    throw new Error(
      `listening on ${host} with no access keys lets anyone on the network read and write every stream: ` +
        'add a user (openkvs users add NAME), give --access-key, or pass --allow-anonymous',
    );
  }
  const dataKeys = new DataKeys(db, keyring, (id) => streams.byId(id)?.kmsKeyId);
  // A stream's data key is made with the stream, not by its first fragment on the ingest path.
  if (seal) streams.onCreate({ created: (s) => dataKeys.keyFor(s.id), rolledBack: (id) => dataKeys.forget(id) });
  const store = await FragmentStore.open({
    dataDir,
    db,
    dataKeys,
    seal,
    retentionMs: (id) => {
      const s = streams.byId(id);
      return s === undefined ? undefined : s.retentionHours * 3_600_000;
    },
    liveBufferMs: limits.liveBufferMs,
    log,
  });
  store.startSweeper(options.sweepIntervalMs ?? 60_000);
  const live = new LiveHub();
  const ctx: ServiceContext = {
    config: { region, accountId, url: '', limits, ...(options.publicUrl ? { publicUrl: publicUrlOf(options.publicUrl) } : {}) },
    auth,
    identities,
    rateLimiter: new RateLimiter(limits.streamRequestsPerSecond, limits.streamRequestBurst),
    log,
    db,
    store,
    streams,
    live,
    ingestBudget: new IngestBudget(limits.maxIngestQueueBytes),
  };
  streams.onDelete((id) => {
    live.closeStream(id);
    return store.deleteStream(id);
  });

  const tls: TlsMaterial | undefined =
    options.tls === undefined ? undefined : options.tls === 'auto' ? await autoTls(dataDir, host) : loadTls(options.tls);

  const app = Fastify({
    bodyLimit: 1024 * 1024,
    serverFactory: (handler) => {
      const onRequest = (req: IncomingMessage, res: ServerResponse) => {
        res.setHeader('x-amzn-RequestId', randomUUID());
        if (req.method === 'POST' && lastSegment(req.url ?? '') === 'putMedia') {
          handlePutMedia(ctx, req, res).catch((err: unknown) => {
            log.error({ err }, 'putMedia failed');
            sendRawError(res, err);
          });
          return;
        }
        // Every other request body is small: one that trickles in is dropped (slow-loris).
        const timer = setTimeout(() => {
          if (!req.complete) req.socket.destroy();
        }, limits.requestBodyTimeoutMs);
        timer.unref();
        const done = () => clearTimeout(timer);
        req.once('end', done).once('close', done);
        handler(req, res);
      };
      const serverOptions = { connectionsCheckingInterval: 1_000, headersTimeout: limits.headersTimeoutMs, requestTimeout: 0 };
      if (!tls) return http.createServer(serverOptions, onRequest);
      // A connection that has not finished its handshake within the headers timeout is closed.
      const secure = https.createServer(
        { ...serverOptions, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', handshakeTimeout: limits.headersTimeoutMs },
        onRequest,
      );
      secure.on('tlsClientError', (err: NodeJS.ErrnoException, socket) =>
        log.warn({ remote: socket.remoteAddress, code: err.code, reason: err.message }, 'TLS handshake failed'),
      );
      return secure as unknown as http.Server;
    },
  });

  // The SDK always sends JSON; parse any content type (and an empty body) as JSON.
  app.removeAllContentTypeParsers();
  const bodyHashes = new WeakMap<IncomingMessage, string>();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    const bytes = body as Buffer;
    if (auth.required()) bodyHashes.set(req.raw, createHash('sha256').update(bytes).digest('hex'));
    const text = bytes.toString('utf8');
    if (text.trim() === '') return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new KvsApiError('InvalidArgumentException', `Request body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });

  const sendError = (reply: FastifyReply, err: unknown) => {
    const { status, headers, body } = errorResponse(err);
    return reply.code(status).headers(headers).send(body);
  };

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof KvsApiError) return sendError(reply, err);
    const e = err as { statusCode?: number; code?: string; message: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(reply, new KvsApiError('InvalidArgumentException', 'Request body is larger than 1 MiB.'));
    }
    if (e.statusCode !== undefined && e.statusCode < 500) {
      return sendError(reply, new KvsApiError('InvalidArgumentException', e.message));
    }
    if (!(err instanceof IntegrityError)) log.error({ err }, 'request failed');
    return sendError(reply, err);
  });

  app.post('/*', async (req, reply) => {
    const name = lastSegment(req.url);
    const body = (req.body ?? {}) as OperationTarget;
    const signer = ctx.auth.check(
      { method: req.method, url: req.raw.url ?? '/', headers: req.headers, bodySha256: bodyHashes.get(req.raw), remoteAddress: req.ip },
      name.charAt(0).toUpperCase() + name.slice(1),
      typeof body === 'object' && body !== null ? body : {},
    );
    const stream = body.StreamName ?? body.StreamARN;
    if (typeof stream === 'string') ctx.rateLimiter.take(name, stream);
    if (name === 'issueCredentials') {
      return reply.header('content-type', 'application/json').send(JSON.stringify(issueCredentials(ctx, signer, req.body)));
    }
    const json = operations.json[name];
    if (json) {
      const out = await json(ctx, req.body, { baseUrl: baseUrlOf(ctx.config, req.headers.host) });
      return reply.header('content-type', 'application/json').send(JSON.stringify(out));
    }
    const streaming = operations.streaming[name];
    if (streaming) {
      reply.hijack();
      try {
        await streaming(ctx, req.body, req.raw, reply.raw);
      } catch (err) {
        // (The store has logged an IntegrityError with the file and offset.)
        if (!(err instanceof KvsApiError) && !(err instanceof IntegrityError)) log.error({ err, operation: name }, 'streaming operation failed');
        sendRawError(reply.raw, err);
      }
      return reply;
    }
    return sendError(reply, new KvsApiError('UnknownOperationException', `Unknown operation: ${name}.`));
  });

  registerPlaybackRoutes(app, ctx);
  registerConsole(app, ctx);

  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new KvsApiError('UnknownOperationException', `No operation at ${req.method} ${req.url}.`)),
  );

  await app.listen({ host, port: options.port ?? 4567 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? 4567);
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  ctx.config.url = `${tls ? 'https' : 'http'}://${urlHost}:${port}`;
  log.info({ url: ctx.config.url, dataDir }, 'openkvs listening');

  let closing: Promise<void> | undefined;
  return {
    url: ctx.config.url,
    port,
    ...(tls ? { tlsCertFile: tls.certFile } : {}),
    close: () =>
      (closing ??= (async () => {
        live.closeAll();
        app.server.closeIdleConnections?.();
        const done = app.close();
        // PutMedia and GetMedia responses are long-lived: end them so the listener can close.
        app.server.closeAllConnections?.();
        await done;
        await store.close();
        db.close();
        log.info('openkvs stopped');
      })()),
  };
}
