/**
 * The relay's status port: `GET /status` (JSON, one entry per camera) and `GET /metrics`
 * (Prometheus text format).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CameraState, CameraStatus } from './camera.js';

const STATES: CameraState[] = ['starting', 'streaming', 'reconnecting', 'stopped'];

const label = (s: string): string => s.replace(/(["\\])/g, '\\$1').replace(/\n/g, '\\n');

/** The cameras' status as Prometheus text metrics. */
export function prometheusText(cameras: CameraStatus[]): string {
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, values: Array<[CameraStatus, number, string?]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [c, v, extra] of values) lines.push(`${name}{camera="${label(c.name)}"${extra ?? ''}} ${v}`);
  };
  metric(
    'openkvs_relay_camera_state',
    'gauge',
    'The camera state (1 for the current one).',
    cameras.flatMap((c) => STATES.map((s): [CameraStatus, number, string] => [c, c.state === s ? 1 : 0, `,state="${s}"`])),
  );
  metric('openkvs_relay_reconnects_total', 'counter', 'Pipeline restarts.', cameras.map((c) => [c, c.reconnects]));
  metric('openkvs_relay_fragments_persisted_total', 'counter', 'Fragments acknowledged as PERSISTED.', cameras.map((c) => [c, c.fragmentsPersisted]));
  metric('openkvs_relay_error_acks_total', 'counter', 'ERROR acknowledgements from the service.', cameras.map((c) => [c, c.errorAcks]));
  metric(
    'openkvs_relay_last_ack_age_seconds',
    'gauge',
    'Seconds since the last PERSISTED acknowledgement (NaN before the first).',
    cameras.map((c) => [c, c.lastAckAgeSeconds ?? Number.NaN]),
  );
  metric('openkvs_relay_bitrate_bps', 'gauge', 'Upload bitrate, bits per second.', cameras.map((c) => [c, c.bitrateBps]));
  metric('openkvs_relay_buffered_seconds', 'gauge', 'Media buffered and not yet persisted, seconds.', cameras.map((c) => [c, c.bufferedSeconds]));
  return `${lines.join('\n')}\n`;
}

export interface StatusServer {
  port: number;
  close(): Promise<void>;
}

export async function startStatusServer(status: () => CameraStatus[], port: number, host = '127.0.0.1'): Promise<StatusServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
    } else if (url.pathname === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify({ cameras: status() }, null, 2)}\n`);
    } else if (url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(prometheusText(status()));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /status or /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
