/**
 * `ensureStream`: make a Kinesis Video stream exist with the given configuration, idempotently,
 * through `@aws-sdk/client-kinesis-video` — the same calls against AWS and the openkvs server
 * (`endpoint` only changes where the control-plane client points).
 *
 * DescribeStream; CreateStream with every setting when it is missing (a concurrent creator's
 * ResourceInUseException means "describe again"); wait until ACTIVE; then, for an existing
 * stream, only what differs: UpdateDataRetention (INCREASE/DECREASE by the difference),
 * UpdateStream (mediaType, deviceName), TagStream (tags missing or different; others are kept).
 * Updates carry the stream's Version; a VersionMismatchException (someone else changed the stream
 * in between) is answered by describing again and retrying once. The KMS key of an existing
 * stream cannot be changed through the API, so a different `kmsKeyId` is an error, raised before
 * anything is changed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateStreamCommand,
  DescribeStreamCommand,
  KinesisVideoClient,
  ListTagsForStreamCommand,
  type StreamInfo,
  TagStreamCommand,
  UpdateDataRetentionCommand,
  UpdateStreamCommand,
} from '@aws-sdk/client-kinesis-video';
import { toProvider } from '../credentials/credentials.js';
import { StreamConfigError } from '../errors.js';
import { sdkTlsSettings } from '../tls-trust.js';
import { type EnsureStreamOptions, parseEnsureStreamOptions } from './ensure-stream-options.js';
import { exceptionName, toStreamConfigError } from './stream-config-errors.js';

export interface EnsureStreamResult {
  streamARN: string;
  /** Whether this call created the stream. */
  created: boolean;
  /** Options this call changed on an existing stream: `dataRetentionInHours`, `mediaType`, `deviceName`, `tags`. */
  updated: string[];
}

/** How long a stream may stay CREATING/UPDATING/DELETING before giving up (AWS takes seconds). */
const ACTIVE_TIMEOUT_MS = 120_000;
const FIRST_POLL_MS = 250;
const MAX_POLL_MS = 5_000;

interface Described {
  info: StreamInfo & { StreamARN: string };
  created: boolean;
}

class StreamEnsurer {
  constructor(
    private readonly client: KinesisVideoClient,
    private readonly opts: EnsureStreamOptions,
  ) {}

  private get name(): string {
    return this.opts.streamName;
  }

  private async call<T>(action: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      throw toStreamConfigError(err, action, this.name);
    }
  }

  /** The stream's description, or undefined when there is no such stream. */
  private async describe(): Promise<StreamInfo | undefined> {
    try {
      const out = await this.client.send(new DescribeStreamCommand({ StreamName: this.name }));
      return out.StreamInfo;
    } catch (err) {
      if (exceptionName(err) === 'ResourceNotFoundException') return undefined;
      throw toStreamConfigError(err, 'DescribeStream', this.name);
    }
  }

  private async create(): Promise<boolean> {
    const o = this.opts;
    try {
      await this.client.send(
        new CreateStreamCommand({
          StreamName: o.streamName,
          DataRetentionInHours: o.dataRetentionInHours,
          Tags: o.tags && Object.keys(o.tags).length > 0 ? o.tags : undefined,
          KmsKeyId: o.kmsKeyId,
          MediaType: o.mediaType,
          DeviceName: o.deviceName,
        }),
      );
      return true;
    } catch (err) {
      // Created meanwhile by someone else (or still being deleted): describe again.
      if (exceptionName(err) === 'ResourceInUseException') return false;
      throw toStreamConfigError(err, 'CreateStream', this.name);
    }
  }

  /** Describes (creating the stream when missing, if `create`) until it is ACTIVE. */
  private async describeActive(create: boolean): Promise<Described> {
    const deadline = Date.now() + ACTIVE_TIMEOUT_MS;
    let created = false;
    let poll = FIRST_POLL_MS;
    let describedAgain = false;
    for (;;) {
      const info = await this.describe();
      if (info !== undefined && info.Status === 'ACTIVE' && info.StreamARN !== undefined) {
        return { info: { ...info, StreamARN: info.StreamARN }, created };
      }
      if (info === undefined) {
        if (!create) {
          throw new StreamConfigError('STREAM_NOT_FOUND', `Stream "${this.name}" disappeared while it was being configured.`, {
            serviceCode: 'ResourceNotFoundException',
          });
        }
        if (!created) {
          if (await this.create()) {
            created = true;
            continue;
          }
          // Someone else created it first: describe again at once, then poll.
          if (!describedAgain) {
            describedAgain = true;
            continue;
          }
        }
      }
      const last = info?.Status ?? 'not found';
      if (Date.now() + poll > deadline) {
        throw new StreamConfigError(
          'STREAM_NOT_ACTIVE',
          `Stream "${this.name}" did not become ACTIVE within ${ACTIVE_TIMEOUT_MS / 1000} s (last seen: ${last}).`,
          { retryable: true },
        );
      }
      await sleep(poll);
      poll = Math.min(MAX_POLL_MS, poll * 2);
    }
  }

  /**
   * Applies one versioned update when `needed` says the stream differs; a VersionMismatch means
   * the stream changed meanwhile: describe again, and retry once if it still differs.
   */
  private async versioned(
    info: Described['info'],
    action: string,
    needed: (info: StreamInfo) => boolean,
    apply: (info: Described['info']) => Promise<unknown>,
  ): Promise<{ info: Described['info']; changed: boolean }> {
    if (!needed(info)) return { info, changed: false };
    try {
      await apply(info);
    } catch (err) {
      if (exceptionName(err) !== 'VersionMismatchException') throw toStreamConfigError(err, action, this.name);
      const again = (await this.describeActive(false)).info;
      if (!needed(again)) return { info: again, changed: false };
      await this.call(action, () => apply(again));
    }
    return { info: (await this.describeActive(false)).info, changed: true };
  }

  private checkKmsKey(info: StreamInfo): void {
    const wanted = this.opts.kmsKeyId;
    if (wanted === undefined) return;
    const existing = info.KmsKeyId ?? '';
    if (sameKmsKey(existing, wanted)) return;
    throw new StreamConfigError(
      'KMS_KEY_MISMATCH',
      `Stream "${this.name}" is encrypted with KMS key ${existing || '(none reported)'}, not ${wanted}. ` +
        'The KMS key of an existing stream cannot be changed through the Kinesis Video Streams API: ' +
        'leave kmsKeyId out, pass the key as DescribeStream reports it, or delete and recreate the stream.',
    );
  }

  async run(): Promise<EnsureStreamResult> {
    const o = this.opts;
    const described = await this.describeActive(true);
    let info = described.info;
    if (described.created) return { streamARN: info.StreamARN, created: true, updated: [] };
    this.checkKmsKey(info);
    const updated: string[] = [];

    const retention = o.dataRetentionInHours;
    if (retention !== undefined) {
      const step = await this.versioned(
        info,
        'UpdateDataRetention',
        (i) => (i.DataRetentionInHours ?? 0) !== retention,
        (i) => {
          const diff = retention - (i.DataRetentionInHours ?? 0);
          return this.client.send(
            new UpdateDataRetentionCommand({
              StreamARN: i.StreamARN,
              CurrentVersion: i.Version,
              Operation: diff > 0 ? 'INCREASE_DATA_RETENTION' : 'DECREASE_DATA_RETENTION',
              DataRetentionChangeInHours: Math.abs(diff),
            }),
          );
        },
      );
      info = step.info;
      if (step.changed) updated.push('dataRetentionInHours');
    }

    const differs = (i: StreamInfo): string[] => [
      ...(o.mediaType !== undefined && i.MediaType !== o.mediaType ? ['mediaType'] : []),
      ...(o.deviceName !== undefined && i.DeviceName !== o.deviceName ? ['deviceName'] : []),
    ];
    const changing = differs(info);
    const step = await this.versioned(
      info,
      'UpdateStream',
      (i) => differs(i).length > 0,
      (i) =>
        // Both fields are sent (the current value when not changing) so that no service reads an
        // omitted one as "clear it".
        this.client.send(
          new UpdateStreamCommand({
            StreamARN: i.StreamARN,
            CurrentVersion: i.Version,
            MediaType: o.mediaType ?? i.MediaType,
            DeviceName: o.deviceName ?? i.DeviceName,
          }),
        ),
    );
    info = step.info;
    if (step.changed) updated.push(...changing);

    if (o.tags !== undefined && Object.keys(o.tags).length > 0) {
      const existing = await this.listTags(info.StreamARN);
      const missing = Object.fromEntries(Object.entries(o.tags).filter(([k, v]) => existing[k] !== v));
      if (Object.keys(missing).length > 0) {
        await this.call('TagStream', () => this.client.send(new TagStreamCommand({ StreamARN: info.StreamARN, Tags: missing })));
        updated.push('tags');
      }
    }
    return { streamARN: info.StreamARN, created: false, updated };
  }

  private async listTags(arn: string): Promise<Record<string, string>> {
    const tags: Record<string, string> = {};
    let token: string | undefined;
    do {
      const out = await this.call('ListTagsForStream', () =>
        this.client.send(new ListTagsForStreamCommand({ StreamARN: arn, NextToken: token })),
      );
      Object.assign(tags, out.Tags);
      token = out.NextToken || undefined;
    } while (token !== undefined);
    return tags;
  }
}

/**
 * Whether a stream's KMS key (as DescribeStream reports it, normally an ARN) is `wanted`, given
 * as that same string, a key id, or an `alias/…` name. Aliases are not resolved to keys (that
 * needs KMS itself): an alias against a key ARN does not match.
 */
function sameKmsKey(existing: string, wanted: string): boolean {
  if (existing === wanted) return true;
  if (!existing.startsWith('arn:')) return false;
  if (wanted.startsWith('alias/')) return existing.endsWith(`:${wanted}`);
  if (!wanted.includes(':') && !wanted.includes('/')) return existing.endsWith(`:key/${wanted}`);
  return false;
}

function resolveRegion(opts: EnsureStreamOptions): string | undefined {
  const fromEnv = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || undefined;
  return opts.region ?? fromEnv ?? (opts.endpoint !== undefined ? 'us-east-1' : undefined);
}

/**
 * Makes `streamName` exist with the given retention, tags, KMS key, media type and device name,
 * changing only what differs. Throws `StreamConfigError` (or `CredentialsError`) on failure.
 */
export async function ensureStream(options: EnsureStreamOptions): Promise<EnsureStreamResult> {
  const opts = parseEnsureStreamOptions(options);
  const credentials = toProvider(opts.credentials);
  const region = resolveRegion(opts);
  let tls: ReturnType<typeof sdkTlsSettings>;
  try {
    tls = sdkTlsSettings(opts.caCert);
  } catch (err) {
    throw new StreamConfigError('INVALID_ARGUMENT', `Invalid ensureStream option caCert: ${(err as Error).message}`, { cause: err });
  }
  const client = new KinesisVideoClient({
    ...(region !== undefined && { region }),
    ...(opts.endpoint !== undefined && { endpoint: opts.endpoint }),
    ...tls,
    credentials,
  });
  try {
    return await new StreamEnsurer(client, opts).run();
  } finally {
    client.destroy();
  }
}
