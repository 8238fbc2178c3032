/**
 * The Kinesis Video Streams control-plane operations (service-api.md §3), keyed by the wire path
 * segment. Each handler checks its input against a strict schema (unknown members are rejected,
 * the message names the field), acts on the stream catalog and returns the response body.
 */
import { z } from 'zod';
import { KvsApiError, invalidArgument } from '../../errors.js';
import type { ServiceContext } from '../context.js';
import type { JsonOperation } from '../operations.js';
import { parseInput, streamArn, streamName, toEpochSeconds } from '../validation.js';
import type { StreamRecord } from './stream-catalog.js';

const MAX_RETENTION_HOURS = 87_600;
const MAX_TAGS = 50;

// Field formats (service-api.md §2).
const name128 = z.string().min(1).max(128).regex(/^[a-zA-Z0-9_.-]+$/, 'expected 1-128 characters [a-zA-Z0-9_.-]');
const mediaType = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\w.+-]+\/[\w.+-]+(,[\w.+-]+\/[\w.+-]+)*$/, 'expected type/subtype[,type/subtype...]');
const kmsKeyId = z.string().min(1).max(2048);
const version = z.string().min(1).max(64).regex(/^[a-zA-Z0-9]+$/, 'expected 1-64 characters [a-zA-Z0-9]');
const retentionHours = z.number().int().min(0).max(MAX_RETENTION_HOURS);
const nextToken = z.string().max(1024).regex(/^[a-zA-Z0-9+/=]*$/, 'expected base64 text');
const tagCharset = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const tagKey = z.string().min(1).max(128).regex(tagCharset, 'expected 1-128 characters [\\p{L}\\p{Z}\\p{N}_.:/=+-@]');
const tagValue = z.string().max(256).regex(tagCharset, 'expected 0-256 characters [\\p{L}\\p{Z}\\p{N}_.:/=+-@]');
const tagMap = z.record(tagKey, tagValue);
const nonEmptyTagMap = tagMap.refine((tags) => Object.keys(tags).length > 0, 'expected at least one tag');
const tagKeyList = z.array(tagKey).min(1).max(MAX_TAGS);
const tagList = z
  .array(z.strictObject({ Key: tagKey, Value: tagValue }))
  .min(1)
  .max(MAX_TAGS);

/** Members naming a stream by name or ARN (the service needs one; the catalog checks that). */
const streamRef = { StreamName: streamName.optional(), StreamARN: streamArn.optional() };

const apiName = z.enum([
  'PUT_MEDIA',
  'GET_MEDIA',
  'LIST_FRAGMENTS',
  'GET_MEDIA_FOR_FRAGMENT_LIST',
  'GET_HLS_STREAMING_SESSION_URL',
  'GET_DASH_STREAMING_SESSION_URL',
  'GET_CLIP',
  'GET_IMAGES',
]);

const schemas = {
  createStream: z.strictObject({
    StreamName: streamName,
    DeviceName: name128.optional(),
    MediaType: mediaType.optional(),
    KmsKeyId: kmsKeyId.optional(),
    DataRetentionInHours: retentionHours.optional(),
    Tags: tagMap.optional(),
    StreamStorageConfiguration: z.strictObject({ DefaultStorageTier: z.enum(['HOT', 'WARM']) }).optional(),
  }),
  describeStream: z.strictObject(streamRef),
  listStreams: z.strictObject({
    MaxResults: z.number().int().min(1).max(10_000).optional(),
    NextToken: nextToken.optional(),
    StreamNameCondition: z
      .strictObject({
        ComparisonOperator: z.enum(['BEGINS_WITH']).optional(),
        ComparisonValue: streamName.optional(),
      })
      .optional(),
  }),
  deleteStream: z.strictObject({ StreamARN: streamArn, CurrentVersion: version.optional() }),
  updateStream: z.strictObject({
    ...streamRef,
    CurrentVersion: version,
    DeviceName: name128.optional(),
    MediaType: mediaType.optional(),
  }),
  updateDataRetention: z.strictObject({
    ...streamRef,
    CurrentVersion: version,
    Operation: z.enum(['INCREASE_DATA_RETENTION', 'DECREASE_DATA_RETENTION']),
    DataRetentionChangeInHours: z.number().int().min(1),
  }),
  tagStream: z.strictObject({ ...streamRef, Tags: nonEmptyTagMap }),
  untagStream: z.strictObject({ ...streamRef, TagKeyList: tagKeyList }),
  listTagsForStream: z.strictObject({ ...streamRef, NextToken: nextToken.optional() }),
  tagResource: z.strictObject({ ResourceARN: streamArn, Tags: tagList }),
  untagResource: z.strictObject({ ResourceARN: streamArn, TagKeyList: tagKeyList }),
  listTagsForResource: z.strictObject({ ResourceARN: streamArn, NextToken: nextToken.optional() }),
  getDataEndpoint: z.strictObject({ ...streamRef, APIName: apiName }),
};

/** StreamInfo as the SDK reads it (service-api.md §3.1); unset optional members are omitted. */
function streamInfo(s: StreamRecord): Record<string, string | number> {
  return {
    ...(s.deviceName !== undefined && { DeviceName: s.deviceName }),
    StreamName: s.name,
    StreamARN: s.arn,
    ...(s.mediaType !== undefined && { MediaType: s.mediaType }),
    KmsKeyId: s.kmsKeyId,
    Version: s.version,
    Status: s.status,
    CreationTime: toEpochSeconds(s.creationMs),
    DataRetentionInHours: s.retentionHours,
  };
}

function checkTagCount(tags: Record<string, string>): void {
  const count = Object.keys(tags).length;
  if (count > MAX_TAGS) {
    throw new KvsApiError(
      'TagsPerResourceExceededLimitException',
      `A stream can have at most ${MAX_TAGS} tags; this request would give it ${count}.`,
    );
  }
}

/** Adds (or overwrites) tags on a stream, enforcing the 50-tag limit on the result. */
function addTags(ctx: ServiceContext, stream: StreamRecord, tags: Record<string, string>): object {
  const merged = { ...stream.tags, ...tags };
  checkTagCount(merged);
  ctx.streams.setTags(stream.id, merged);
  return {};
}

/** Removes tags from a stream; keys it does not have are ignored. */
function removeTags(ctx: ServiceContext, stream: StreamRecord, keys: string[]): object {
  const remaining = { ...stream.tags };
  for (const key of keys) delete remaining[key];
  ctx.streams.setTags(stream.id, remaining);
  return {};
}

/** The stream a tagging-API ResourceARN names (only streams are supported). */
const resource = (ctx: ServiceContext, arn: string): StreamRecord => ctx.streams.resolve({ StreamARN: arn });

function decodeNextToken(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined;
  const after = Buffer.from(token, 'base64').toString('utf8');
  if (!streamName.safeParse(after).success) throw invalidArgument(`Invalid NextToken: ${token}.`);
  return after;
}

export const controlPlaneOperations: Record<string, JsonOperation> = {
  createStream: (ctx, body) => {
    const input = parseInput(schemas.createStream, body);
    if (input.Tags) checkTagCount(input.Tags);
    const stream = ctx.streams.create({
      name: input.StreamName,
      deviceName: input.DeviceName,
      mediaType: input.MediaType,
      kmsKeyId: input.KmsKeyId,
      retentionHours: input.DataRetentionInHours ?? 0,
      tags: input.Tags,
    });
    return { StreamARN: stream.arn };
  },

  describeStream: (ctx, body) => {
    const input = parseInput(schemas.describeStream, body);
    return { StreamInfo: streamInfo(ctx.streams.resolve(input)) };
  },

  listStreams: (ctx, body) => {
    const input = parseInput(schemas.listStreams, body);
    const page = ctx.streams.listPage({
      prefix: input.StreamNameCondition?.ComparisonValue,
      after: decodeNextToken(input.NextToken),
      limit: input.MaxResults ?? 10_000,
    });
    return {
      StreamInfoList: page.streams.map(streamInfo),
      ...(page.lastName !== undefined && { NextToken: Buffer.from(page.lastName).toString('base64') }),
    };
  },

  deleteStream: async (ctx, body) => {
    const input = parseInput(schemas.deleteStream, body);
    // Looking the stream up by its full ARN also checks the creation time: an ARN of an older
    // stream of the same name is not found.
    const stream = ctx.streams.resolve({ StreamARN: input.StreamARN });
    await ctx.streams.delete(stream.id, input.CurrentVersion);
    return {};
  },

  updateStream: (ctx, body) => {
    const input = parseInput(schemas.updateStream, body);
    const stream = ctx.streams.resolve(input);
    ctx.streams.update(stream.id, input.CurrentVersion, { deviceName: input.DeviceName, mediaType: input.MediaType });
    return {};
  },

  updateDataRetention: async (ctx, body) => {
    const input = parseInput(schemas.updateDataRetention, body);
    const stream = ctx.streams.resolve(input);
    const decrease = input.Operation === 'DECREASE_DATA_RETENTION';
    const hours = stream.retentionHours + (decrease ? -input.DataRetentionChangeInHours : input.DataRetentionChangeInHours);
    if (hours < 0 || hours > MAX_RETENTION_HOURS) {
      throw invalidArgument(
        `DataRetentionChangeInHours ${input.DataRetentionChangeInHours} would take the retention of ${stream.name} ` +
          `from ${stream.retentionHours} to ${hours} hours; it must stay within 0-${MAX_RETENTION_HOURS}.`,
      );
    }
    ctx.streams.update(stream.id, input.CurrentVersion, { retentionHours: hours });
    // Data older than the shorter retention goes now, not at the next periodic sweep.
    if (decrease) await ctx.store.sweep();
    return {};
  },

  tagStream: (ctx, body) => {
    const input = parseInput(schemas.tagStream, body);
    return addTags(ctx, ctx.streams.resolve(input), input.Tags);
  },

  untagStream: (ctx, body) => {
    const input = parseInput(schemas.untagStream, body);
    return removeTags(ctx, ctx.streams.resolve(input), input.TagKeyList);
  },

  // All tags fit in one page (at most 50), so NextToken is accepted and never returned.
  listTagsForStream: (ctx, body) => {
    const input = parseInput(schemas.listTagsForStream, body);
    return { Tags: ctx.streams.resolve(input).tags };
  },

  TagResource: (ctx, body) => {
    const input = parseInput(schemas.tagResource, body);
    const tags = Object.fromEntries(input.Tags.map((t) => [t.Key, t.Value]));
    return addTags(ctx, resource(ctx, input.ResourceARN), tags);
  },

  UntagResource: (ctx, body) => {
    const input = parseInput(schemas.untagResource, body);
    return removeTags(ctx, resource(ctx, input.ResourceARN), input.TagKeyList);
  },

  ListTagsForResource: (ctx, body) => {
    const input = parseInput(schemas.listTagsForResource, body);
    return { Tags: resource(ctx, input.ResourceARN).tags };
  },

  getDataEndpoint: (ctx, body, request) => {
    const input = parseInput(schemas.getDataEndpoint, body);
    ctx.streams.resolve(input);
    return { DataEndpoint: request.baseUrl };
  },
};
