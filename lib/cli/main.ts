#!/usr/bin/env node
/**
 * The `openkvs` command.
 *   openkvs serve [--host 127.0.0.1] [--port 4567] [--data-dir ./openkvs-data] [--tls auto | --tls-cert F --tls-key F]
 *   openkvs stream --source test|file:PATH|rtsp://…|v4l2:/dev/videoN --stream-name NAME [--endpoint URL]
 *   openkvs relay --config cameras.yaml [--status-port 9090] — keeps RTSP cameras streaming
 *   openkvs demo  — the server plus a test-pattern camera streaming into the `demo` stream
 *   openkvs plugin-path — the folder for GST_PLUGIN_PATH
 */
import { Command, InvalidArgumentError } from 'commander';
import { pluginPath } from '../plugin-path.js';
import { runDemo } from './demo.js';
import { runStream } from './stream.js';
import { runRelay } from './relay.js';
import { parseDuration, runConsume, type ConsumeCommandOptions } from './consume.js';
import { startServer } from '../service/server.js';
import { tuneHeapForIngest } from './heap.js';
import { listKeys, rotateKeys } from './keys.js';
import { addUser, issueCredentials, listUsers, removeUser, setPolicy } from './users.js';

const count = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of 1 or more');
  return n;
};

const port = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
};

interface ServeFlags {
  host: string;
  port: number;
  dataDir: string;
  logLevel: string;
  region: string;
  accessKey: string[];
  tls?: string;
  tlsCert?: string;
  tlsKey?: string;
  keyring?: string;
  encryption: boolean;
  allowAnonymous: boolean;
  publicUrl?: string;
}

/** --tls auto, or --tls-cert with --tls-key. */
function tlsOption(flags: ServeFlags): { cert: string; key: string } | 'auto' | undefined {
  if (flags.tls !== undefined && flags.tls !== 'auto') throw new InvalidArgumentError(`--tls takes only "auto" (or use --tls-cert and --tls-key), got "${flags.tls}"`);
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new InvalidArgumentError('--tls-cert and --tls-key go together');
  if (flags.tls === 'auto' && flags.tlsCert !== undefined) throw new InvalidArgumentError('--tls auto makes its own certificate: drop --tls-cert/--tls-key, or --tls');
  if (flags.tlsCert !== undefined && flags.tlsKey !== undefined) return { cert: flags.tlsCert, key: flags.tlsKey };
  return flags.tls === 'auto' ? 'auto' : undefined;
}

/** `AKID:SECRET` pairs from --access-key flags and OPENKVS_ACCESS_KEYS (comma-separated). */
function accessKeys(flags: string[]): Record<string, string> | undefined {
  const pairs = [...(process.env.OPENKVS_ACCESS_KEYS ?? '').split(','), ...flags].map((p) => p.trim()).filter(Boolean);
  if (pairs.length === 0) return undefined;
  const keys: Record<string, string> = {};
  for (const pair of pairs) {
    const colon = pair.indexOf(':');
    if (colon <= 0 || colon === pair.length - 1) {
      throw new InvalidArgumentError(`access keys are given as ACCESS_KEY_ID:SECRET_ACCESS_KEY, got "${pair.slice(0, 24)}…"`);
    }
    keys[pair.slice(0, colon)] = pair.slice(colon + 1);
  }
  return keys;
}

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`openkvs: ${signal} again, exiting now\n`);
      process.exit(130);
    }
    stopping = true;
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`openkvs: error while stopping: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

const program = new Command();
program.name('openkvs').description('Open Kinesis Video Streams: server, producer and tools').showHelpAfterError();

program
  .command('serve')
  .description('run the openkvs server (Kinesis Video Streams compatible endpoint)')
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--port <port>', 'port (0 picks a free one)', port, 4567)
  .option('--data-dir <dir>', 'where fragments and the index are stored', './openkvs-data')
  .option('--region <region>', 'region reported in stream ARNs', 'us-east-1')
  .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'info')
  .option(
    '--access-key <id:secret>',
    'require SigV4 signatures by this key (repeatable; also OPENKVS_ACCESS_KEYS=id:secret,…)',
    (v: string, all: string[]) => [...all, v],
    [] as string[],
  )
  .option('--tls <auto>', 'serve HTTPS with a self-signed certificate kept in <data-dir>/tls/ (made on first start)')
  .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (with --tls-key)')
  .option('--tls-key <file>', 'the PEM private key of --tls-cert')
  .option('--keyring <file>', 'master keys for encryption at rest (default <data-dir>/keys/master-keys.json; or OPENKVS_MASTER_KEY)')
  .option('--no-encryption', 'store new fragments unencrypted (encrypted ones stay readable while the keyring is there)')
  .option('--allow-anonymous', 'serve a non-loopback interface without access keys or users (anyone may read and write)', false)
  .option('--public-url <url>', 'the URL clients reach the server at, when not the Host they send (e.g. behind a TLS proxy)')
  .action(async (flags: ServeFlags) => {
    const tls = tlsOption(flags);
    tuneHeapForIngest();
    const server = await startServer({
      allowAnonymous: flags.allowAnonymous,
      ...(tls ? { tls } : {}),
      encryption: flags.encryption ? (flags.keyring ? { keyringFile: flags.keyring } : {}) : false,
      accessKeys: accessKeys(flags.accessKey),
      host: flags.host,
      port: flags.port,
      dataDir: flags.dataDir,
      region: flags.region,
      logLevel: flags.logLevel,
      ...(flags.publicUrl ? { publicUrl: flags.publicUrl } : {}),
    });
    process.stdout.write(`openkvs listening on ${server.url}\n`);
    if (server.tlsCertFile) process.stdout.write(`clients trust ${server.tlsCertFile} (kvssink ca-cert, AWS_CA_BUNDLE)\n`);
    onSignals(() => server.close());
  });

const repeat = (v: string, all: string[]) => [...all, v];
const users = program.command('users').description('users, their access keys and policies (see docs/security.md)');
const userFlags = (c: Command) =>
  c.option('--data-dir <dir>', 'the server data dir', './openkvs-data').option('--keyring <file>', 'the keyring file, if not in the data dir');
const policyFlags = (c: Command) =>
  c
    .option('--policy <file>', 'an IAM-style JSON policy document')
    .option('--allow <actions:streams>', 'shorthand rule, e.g. PutMedia,GetDataEndpoint,DescribeStream:door-* (repeatable)', repeat, [] as string[]);
policyFlags(userFlags(users.command('add <name>').description('add a user and print its access key (full access unless --policy/--allow)'))).action(
  (name: string, flags: { dataDir: string; keyring?: string; policy?: string; allow: string[] }) => {
    process.stdout.write(addUser({ ...flags, name }));
  },
);
userFlags(users.command('list').description('list users and their policies')).action((flags: { dataDir: string; keyring?: string }) => {
  process.stdout.write(listUsers(flags));
});
userFlags(users.command('remove <name>').description('remove a user and its temporary credentials')).action((name: string, flags: { dataDir: string; keyring?: string }) => {
  process.stdout.write(removeUser({ ...flags, name }));
});
policyFlags(userFlags(users.command('policy <name>').description("replace a user's policy"))).action(
  (name: string, flags: { dataDir: string; keyring?: string; policy?: string; allow: string[] }) => {
    process.stdout.write(setPolicy({ ...flags, name }));
  },
);
policyFlags(userFlags(users.command('credentials <name>').description('issue temporary credentials (JSON) for a device, optionally narrowed by --policy/--allow')))
  .option('--duration <duration>', 'how long they last, 15m to 12h', '1h')
  .action((name: string, flags: { dataDir: string; keyring?: string; policy?: string; allow: string[]; duration: string }) => {
    process.stdout.write(issueCredentials({ ...flags, name, durationS: Math.round(parseDuration(flags.duration, '--duration') / 1000) }));
  });

const keys = program.command('keys').description('master keys of encryption at rest (see docs/security.md)');
keys
  .command('list')
  .description('list the master keys and how many stream data keys each wraps')
  .option('--data-dir <dir>', 'the server data dir', './openkvs-data')
  .option('--keyring <file>', 'the keyring file, if not in the data dir')
  .action((flags: { dataDir: string; keyring?: string }) => {
    process.stdout.write(listKeys(flags));
  });
keys
  .command('rotate')
  .description('add a new version of a master key (default: every key) and rewrap the data keys; media is not rewritten')
  .option('--name <name>', 'the key to rotate, e.g. alias/aws/kinesisvideo')
  .option('--data-dir <dir>', 'the server data dir', './openkvs-data')
  .option('--keyring <file>', 'the keyring file, if not in the data dir')
  .action((flags: { dataDir: string; keyring?: string; name?: string }) => {
    process.stdout.write(rotateKeys(flags));
  });

program
  .command('demo')
  .description('start the server with a demo camera (GStreamer test pattern) streaming into the "demo" stream')
  .option('--port <port>', 'server port', port, 4567)
  .option('--data-dir <dir>', 'where fragments and the index are stored', './openkvs-data')
  .action(async (flags: { port: number; dataDir: string }) => {
    const demo = await runDemo(flags);
    onSignals(() => demo.stop());
  });

program
  .command('stream')
  .description('upload a camera, file or test pattern to a stream (kvssink in this process)')
  .requiredOption('--source <source>', 'test, file:PATH, rtsp://… or v4l2:/dev/videoN')
  .requiredOption('--stream-name <name>', 'the stream to upload to (created if missing)')
  .option('--endpoint <url>', 'openkvs server or custom endpoint (default: AWS)')
  .option('--region <region>', 'AWS region')
  .option('--ca-cert <file>', 'CA certificate to trust for an https endpoint (default: AWS_CA_BUNDLE, else the system store)')
  .option('--retention <hours>', 'retention when the stream is created', (v: string) => Number(v), 24)
  .option('--no-create', 'fail instead of creating a missing stream')
  .action(async (flags: { source: string; streamName: string; endpoint?: string; region?: string; caCert?: string; retention: number; create: boolean }) => {
    process.exitCode = await runStream({
      source: flags.source,
      streamName: flags.streamName,
      retentionHours: flags.retention,
      create: flags.create,
      ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
      ...(flags.region ? { region: flags.region } : {}),
      ...(flags.caCert ? { caCert: flags.caCert } : {}),
    });
  });

program
  .command('consume')
  .description('read a stream live or from a time, frame by frame, or export a time range to MKV/MP4 (see docs/consumer.md)')
  .requiredOption('--stream <name>', 'the stream to read')
  .option('--start <when>', 'now, earliest, an ISO 8601 time or epoch seconds', 'now')
  .option('--end <when>', 'end of the range to export with --output')
  .option('--frames', 'print one JSON line per frame on stdout', false)
  .option('--output <file>', 'export the range --start..--end to this .mkv or .mp4 file')
  .option('--checkpoint <file>', 'resume from and save the position in this file')
  .option('--images <dir>', 'decode and write a PNG every --every into this folder')
  .option('--every <duration>', 'interval of --images, such as 1s or 500ms', '1s')
  .option('--count <n>', 'stop after this many frames', count)
  .option('--endpoint <url>', 'openkvs server or custom endpoint (default: AWS)')
  .option('--region <region>', 'AWS region')
  .option('--ca-cert <file>', 'CA certificate to trust for an https endpoint (default: AWS_CA_BUNDLE, else the system store)')
  .option('--quiet', 'no progress line', false)
  .action(async (flags: Omit<ConsumeCommandOptions, 'streamName' | 'everyMs'> & { stream: string; every: string }) => {
    const { stream, every, ...rest } = flags;
    process.exitCode = await runConsume({ streamName: stream, everyMs: parseDuration(every), ...rest });
  });

program
  .command('relay')
  .description('keep RTSP cameras streaming into their streams, through outages (see docs/relay.md)')
  .requiredOption('--config <file>', 'the cameras, as YAML or JSON (SIGHUP reloads it)')
  .option('--status-port <port>', 'serve GET /status (JSON) and GET /metrics (Prometheus) on this port', port)
  .option('--status-host <host>', 'interface of the status port', '127.0.0.1')
  .action(async (flags: { config: string; statusPort?: number; statusHost: string }) => {
    process.exitCode = await runRelay(flags);
  });

program
  .command('plugin-path')
  .description('print the folder to put in GST_PLUGIN_PATH so gst-launch-1.0 finds kvssink')
  .action(() => {
    process.stdout.write(`${pluginPath()}\n`);
  });

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`openkvs: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
