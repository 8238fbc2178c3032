/**
 * Request validation shared by every operation. The AWS SDK validates nothing client-side
 * (service-api.md §1.1), so every input is checked here against a strict zod schema; a failure
 * becomes an InvalidArgumentException whose message names the offending field.
 */
import { z } from 'zod';
import { invalidArgument } from '../errors.js';

export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length > 0 ? issue.path.join('.') : undefined;
  if (issue.code === 'unrecognized_keys') {
    const where = field ? ` in ${field}` : '';
    throw invalidArgument(`Unknown field${issue.keys.length > 1 ? 's' : ''}${where}: ${issue.keys.join(', ')}.`);
  }
  throw invalidArgument(field ? `Invalid value for ${field}: ${issue.message}.` : `Invalid request: ${issue.message}.`);
}

/** A timestamp as the SDK sends it: epoch seconds as a number (or numeric string); parsed to integer ms. */
export const epochSeconds = z
  .union([z.number(), z.string().regex(/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/, 'expected epoch seconds')])
  .transform((v) => Math.round(Number(v) * 1000))
  .refine((ms) => Number.isFinite(ms) && ms >= 0, 'expected a non-negative epoch-seconds timestamp');

export const streamName = z.string().min(1).max(256).regex(/^[a-zA-Z0-9_.-]+$/, 'expected 1-256 characters [a-zA-Z0-9_.-]');
export const streamArn = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^arn:[a-z\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+\/[a-zA-Z0-9_.-]+\/[0-9]+$/, 'expected a Kinesis Video stream ARN');

/** Wire timestamps: epoch seconds with a millisecond fraction (service-api.md §1.6). */
export const toEpochSeconds = (ms: number): number => Math.round(ms) / 1000;
