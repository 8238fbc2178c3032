/**
 * The relay configuration (docs/relay.md): a YAML or JSON file naming the cameras to pull and
 * the streams they go to. Checked at the boundary: unknown keys are refused and every message
 * names the field, e.g. `cameras[1].url: expected an rtsp:// or rtsps:// URL`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { RelayConfigError } from '../errors.js';

export type Transport = 'tcp' | 'udp' | 'auto';
export type VideoCodec = 'h264' | 'h265';
export type SinkPropertyValue = string | number | boolean;

export interface CameraConfig {
  /** Unique; used in logs, status and metrics. */
  name: string;
  /** rtsp:// or rtsps:// URL, credentials included when the camera needs them. */
  url: string;
  streamName: string;
  /** RTP transport: tcp (default; works through NAT and firewalls), udp, or auto (rtspsrc tries udp first). */
  transport: Transport;
  /** Carry the camera's AAC audio track (default false). */
  audio: boolean;
  /** The video codec the camera sends, passed through without re-encoding; auto (default) reads it from the camera's SDP. */
  codec: VideoCodec | 'auto';
  /** rtspsrc jitterbuffer latency, ms (default 200). */
  latencyMs: number;
  /** Restart the camera when no fragment is acknowledged for this long (default 10 s). */
  noDataTimeoutSeconds: number;
  /** Any kvssink property, e.g. `{ fragment-duration: 2000 }`. */
  sink: Record<string, SinkPropertyValue>;
}

export type RelayCredentials = { profile: string } | { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

export interface BackoffConfig {
  /** First restart delay, seconds (default 1). */
  initialSeconds: number;
  /** Longest restart delay, seconds (default 30). */
  maxSeconds: number;
  /** Each failed attempt multiplies the delay by this (default 2). */
  multiplier: number;
  /** Random part of each delay, 0-1 (default 0.2: ±20 %). */
  jitter: number;
}

export interface RelayConfig {
  /** Control-plane endpoint (an openkvs server); omitted: AWS in `region`. */
  endpoint?: string;
  /** CA certificate (PEM) to trust for an https endpoint; omitted: AWS_CA_BUNDLE or the system store. */
  caCert?: string;
  region?: string;
  /** Omitted: the AWS provider chain. */
  credentials?: RelayCredentials;
  backoff: BackoffConfig;
  cameras: CameraConfig[];
}

const NAME = /^[a-zA-Z0-9_.-]{1,64}$/;
const STREAM_NAME = /^[a-zA-Z0-9_.-]{1,256}$/;
const PROPERTY = /^[a-z][a-z0-9-]*$/;
/** Set by the relay itself; a `sink` entry would contradict the camera's own fields. */
const RESERVED_SINK_PROPERTIES = ['name', 'stream-name', 'endpoint', 'ca-cert', 'aws-region', 'access-key', 'secret-key', 'session-token'];

const isUrl = (value: string, protocols: string[]): boolean => {
  try {
    const url = new URL(value);
    return protocols.includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
};

const nonEmpty = z.string().min(1, 'expected a non-empty string');

const credentialsSchema = z
  .strictObject({
    profile: nonEmpty.optional(),
    accessKeyId: nonEmpty.optional(),
    secretAccessKey: nonEmpty.optional(),
    sessionToken: nonEmpty.optional(),
  })
  .superRefine((c, ctx) => {
    if (c.profile !== undefined) {
      for (const key of ['accessKeyId', 'secretAccessKey', 'sessionToken'] as const) {
        if (c[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'give either profile or keys, not both' });
      }
    } else if (c.accessKeyId === undefined || c.secretAccessKey === undefined) {
      ctx.addIssue({ code: 'custom', path: [], message: 'expected { profile } or { accessKeyId, secretAccessKey, sessionToken? }' });
    }
  })
  .transform((c): RelayCredentials =>
    c.profile !== undefined
      ? { profile: c.profile }
      : { accessKeyId: c.accessKeyId!, secretAccessKey: c.secretAccessKey!, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) },
  );

const cameraSchema = z.strictObject({
  name: z.string().regex(NAME, 'expected 1-64 characters [a-zA-Z0-9_.-]'),
  url: z.string().refine((u) => isUrl(u, ['rtsp:', 'rtsps:']), 'expected an rtsp:// or rtsps:// URL'),
  streamName: z.string().regex(STREAM_NAME, 'expected 1-256 characters [a-zA-Z0-9_.-]'),
  transport: z.enum(['tcp', 'udp', 'auto'], 'expected tcp, udp or auto').default('tcp'),
  audio: z.boolean('expected true or false').default(false),
  codec: z.enum(['auto', 'h264', 'h265'], 'expected auto, h264 or h265').default('auto'),
  latencyMs: z.number().int().min(0).max(10_000).default(200),
  noDataTimeoutSeconds: z.number().min(1).max(3600).default(10),
  sink: z
    .record(
      z.string().regex(PROPERTY, 'expected a kvssink property name such as fragment-duration'),
      z.union([z.string(), z.number(), z.boolean()], 'expected a string, number or boolean'),
    )
    .superRefine((props, ctx) => {
      for (const key of Object.keys(props)) {
        if (RESERVED_SINK_PROPERTIES.includes(key)) {
          ctx.addIssue({ code: 'custom', path: [key], message: 'is set by the relay (use the camera and top-level fields)' });
        }
      }
    })
    .default({}),
});

const configSchema = z.strictObject({
  endpoint: z.string().refine((u) => isUrl(u, ['http:', 'https:']), 'expected an http:// or https:// URL').optional(),
  caCert: z.string().min(1).optional(),
  region: z.string().regex(/^[a-z0-9-]{1,64}$/, 'expected a region such as us-east-1').optional(),
  credentials: credentialsSchema.optional(),
  backoff: z
    .strictObject({
      initialSeconds: z.number().positive().max(3600).default(1),
      maxSeconds: z.number().positive().max(86_400).default(30),
      multiplier: z.number().min(1).max(10).default(2),
      jitter: z.number().min(0).max(1).default(0.2),
    })
    .default({ initialSeconds: 1, maxSeconds: 30, multiplier: 2, jitter: 0.2 }),
  cameras: z.array(cameraSchema).superRefine((cameras, ctx) => {
    for (const field of ['name', 'streamName'] as const) {
      const first = new Map<string, number>();
      cameras.forEach((camera, i) => {
        const seen = first.get(camera[field]);
        if (seen === undefined) first.set(camera[field], i);
        else ctx.addIssue({ code: 'custom', path: [i, field], message: `duplicate ${field} "${camera[field]}" (also cameras[${seen}])` });
      });
    }
  }),
});

/** Other spellings users write for a field (lower case, without - and _), and the field's name. */
const SPELLINGS: Readonly<Record<string, string>> = {
  rtspurl: 'url', uri: 'url', rtspuri: 'url', source: 'url', cameraurl: 'url',
  stream: 'streamName', streamname: 'streamName', kvsstream: 'streamName', kvsstreamname: 'streamName',
  camera: 'cameras', streams: 'cameras',
  notimeout: 'noDataTimeoutSeconds', nodatatimeout: 'noDataTimeoutSeconds', timeoutseconds: 'noDataTimeoutSeconds',
  latency: 'latencyMs', protocol: 'transport', awsregion: 'region', endpointurl: 'endpoint',
};

/** `cameras[1].url` from a zod path. */
function fieldOf(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('');
}

/** Checks a parsed config object; throws RelayConfigError naming the first bad field. */
export function parseRelayConfig(input: unknown, source = 'config'): RelayConfig {
  const result = configSchema.safeParse(input, {
    error: (issue) => (issue.input === undefined && issue.code === 'invalid_type' ? 'is required' : undefined),
  });
  if (result.success) return result.data;
  const hintOf = (keys: readonly string[]) => keys.map((k) => SPELLINGS[k.toLowerCase().replace(/[-_]/g, '')]).find((k) => k !== undefined);
  // A field under another name (rtspUrl for url) is named first, before the "is required" it causes.
  const issues = result.error.issues;
  const issue = issues.find((i) => i.code === 'unrecognized_keys' && hintOf(i.keys) !== undefined) ?? issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const where = fieldOf(issue.path);
    const keys = issue.keys.map((k) => (where ? `${where}.${k}` : k)).join(', ');
    const hint = hintOf(issue.keys);
    throw new RelayConfigError('INVALID_CONFIG', `${source}: unknown field ${keys}${hint ? ` (the field is called ${hint})` : ''}`);
  }
  const where = fieldOf(issue.path) || '(top level)';
  throw new RelayConfigError('INVALID_CONFIG', `${source}: ${where}: ${issue.message}`);
}

/** Reads and checks a .yaml, .yml or .json relay config file. */
export async function loadRelayConfig(file: string): Promise<RelayConfig> {
  const ext = path.extname(file).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(ext)) {
    throw new RelayConfigError('CONFIG_UNREADABLE', `${file}: expected a .yaml, .yml or .json file`);
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RelayConfigError('CONFIG_UNREADABLE', `${file}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  let data: unknown;
  try {
    data = ext === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new RelayConfigError('CONFIG_UNREADABLE', `${file}: not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`, { cause: err });
  }
  return parseRelayConfig(data, file);
}
