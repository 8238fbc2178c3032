/**
 * A real openkvs server on 127.0.0.1 for tests, with the AWS SDK v3 clients pointed at it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateStreamCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import {
  type Fragment,
  GetMediaForFragmentListCommand,
  KinesisVideoArchivedMediaClient,
  ListFragmentsCommand,
} from '@aws-sdk/client-kinesis-video-archived-media';
import { KinesisVideoMediaClient } from '@aws-sdk/client-kinesis-video-media';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { type ConsumedFragment, GetMediaParser } from '../../lib/consumer/get-media-parser.js';
import { sdkTlsSettings } from '../../lib/tls-trust.js';
import { type OpenKvsServer, type ServerOptions, startServer } from '../../lib/service/server.js';

export const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

export const tempDir = (prefix = 'openkvs-test-'): string => mkdtempSync(path.join(os.tmpdir(), prefix));

export interface Clients {
  kv: KinesisVideoClient;
  media: KinesisVideoMediaClient;
  archived: KinesisVideoArchivedMediaClient;
}

/** SDK clients of a server; `caCert` is the certificate to trust when it serves https. */
export function clientsFor(url: string, caCert?: string): Clients {
  const config = { endpoint: url, region: 'us-east-1', credentials, maxAttempts: 1, ...sdkTlsSettings(caCert) };
  return {
    kv: new KinesisVideoClient(config),
    media: new KinesisVideoMediaClient(config),
    archived: new KinesisVideoArchivedMediaClient(config),
  };
}

export interface TestServer extends Clients {
  server: OpenKvsServer;
  url: string;
  dataDir: string;
  createStream(name: string, retentionHours?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTestServer(options: ServerOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDir();
  const server = await startServer({ port: 0, logLevel: 'silent', ...options, dataDir });
  const clients = clientsFor(server.url, server.tlsCertFile);
  return {
    ...clients,
    server,
    url: server.url,
    dataDir,
    createStream: async (name, retentionHours = 24) => {
      await clients.kv.send(new CreateStreamCommand({ StreamName: name, DataRetentionInHours: retentionHours }));
    },
    close: () => server.close(),
  };
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** `openkvs serve` in a child process (for crash tests); resolves once it prints its URL. */
export async function spawnServer(dataDir: string, port: number): Promise<{ child: ChildProcess; url: string }> {
  const cli = path.resolve('dist/lib/cli/main.js');
  const child = spawn(process.execPath, [cli, 'serve', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /openkvs listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`openkvs serve exited with ${code}: ${out}`)));
  });
  return { child, url };
}

/** A pino logger whose JSON lines are kept in `logs` (to check what the server logged). */
export function capturingLogger(): { logger: Logger; logs: Array<Record<string, unknown>> } {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), logs };
}

/** Every stored fragment of a stream, by fragment number: ListFragments by server timestamp over all time, every page. */
export async function listAllFragments(archived: KinesisVideoArchivedMediaClient, stream: string): Promise<Fragment[]> {
  const FragmentSelector = {
    FragmentSelectorType: 'SERVER_TIMESTAMP' as const,
    TimestampRange: { StartTimestamp: new Date(0), EndTimestamp: new Date(Date.now() + 3_600_000) },
  };
  const fragments: Fragment[] = [];
  let NextToken: string | undefined;
  do {
    const page = await archived.send(new ListFragmentsCommand({ StreamName: stream, FragmentSelector, NextToken }));
    fragments.push(...(page.Fragments ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  // Fragment numbers have a fixed width: text order is number order.
  return fragments.sort((a, b) => (a.FragmentNumber! < b.FragmentNumber! ? -1 : 1));
}

/** The media GetMediaForFragmentList returns for these fragment numbers (one MKV document a fragment). */
export async function fragmentMedia(archived: KinesisVideoArchivedMediaClient, stream: string, numbers: string[]): Promise<Buffer> {
  const res = await archived.send(new GetMediaForFragmentListCommand({ StreamName: stream, Fragments: numbers }));
  return Buffer.from(await res.Payload!.transformToByteArray());
}

/** GetMedia-style media parsed into fragments (tags, tracks, frames). */
export function parseFragments(media: Buffer): ConsumedFragment[] {
  const fragments: ConsumedFragment[] = [];
  const parser = new GetMediaParser({ onFragment: (f) => fragments.push(f) });
  parser.push(media);
  parser.end();
  return fragments;
}

/** The fragments GetMediaForFragmentList returns for these numbers, parsed. */
export async function readFragments(archived: KinesisVideoArchivedMediaClient, stream: string, numbers: string[]): Promise<ConsumedFragment[]> {
  return parseFragments(await fragmentMedia(archived, stream, numbers));
}

/** Timestamps (ms) of a stream's video frames (track 1), every fragment in order. */
export async function videoTimestamps(archived: KinesisVideoArchivedMediaClient, stream: string): Promise<number[]> {
  const numbers = (await listAllFragments(archived, stream)).map((f) => f.FragmentNumber!);
  const fragments = numbers.length ? await readFragments(archived, stream, numbers) : [];
  return fragments.flatMap((f) => f.frames.filter((fr) => fr.track === 1).map((fr) => fr.timestampMs));
}

/** Differences between consecutive values. */
export const steps = (xs: number[]): number[] => xs.slice(1).map((x, i) => x - xs[i]!);

/** Polls `cond` every 100 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
