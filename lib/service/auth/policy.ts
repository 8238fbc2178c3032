/**
 * IAM-style access policies, as users write them for AWS:
 *
 *   { "Version": "2012-10-17",
 *     "Statement": [{ "Effect": "Allow", "Action": ["kinesisvideo:PutMedia", "kinesisvideo:Describe*"],
 *                     "Resource": "arn:aws:kinesisvideo:*:*:stream/door-*" }] }
 *
 * Deny by default; an explicit Deny wins over any Allow. Actions and resources match with `*` (any
 * run of characters) and `?` (one character), actions case-insensitively. A stream resource is the
 * stream's ARN (`arn:aws:kinesisvideo:REGION:ACCOUNT:stream/NAME/CREATION`); a pattern without the
 * creation part (`…:stream/NAME`) also matches it, as `stream/NAME/*` would. Conditions,
 * NotAction and NotResource are refused rather than ignored.
 */
import { z } from 'zod';

const stringOrList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));

const StatementSchema = z
  .object({
    Sid: z.string().optional(),
    Effect: z.enum(['Allow', 'Deny']),
    Action: stringOrList,
    Resource: stringOrList,
  })
  .strict();

const PolicySchema = z
  .object({
    Version: z.enum(['2012-10-17', '2008-10-17']).optional(),
    Id: z.string().optional(),
    Statement: z.union([StatementSchema, z.array(StatementSchema)]).transform((v) => (Array.isArray(v) ? v : [v])),
  })
  .strict();

export type Policy = z.output<typeof PolicySchema>;

/** Full access: what `--access-key` keys and `users add --admin` get. */
export const ADMIN_POLICY: Policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kinesisvideo:*'], Resource: ['*'] }] };

/** Parses a policy document (JSON text or value); the error names what is wrong. */
export function parsePolicy(input: unknown): Policy {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (err) {
      throw new Error(`the policy is not JSON: ${(err as Error).message}`);
    }
  }
  const r = PolicySchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const where = issue.path.join('.') || 'policy';
    const hint = issue.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')}: not supported here; only Effect, Action, Resource and Sid)` : '';
    throw new Error(`invalid policy at ${where}: ${issue.message}${hint}`);
  }
  for (const s of r.data.Statement) {
    for (const a of s.Action) {
      if (a !== '*' && !/^kinesisvideo:[A-Za-z*?]+$/.test(a)) throw new Error(`invalid policy: action "${a}" is not a kinesisvideo:… action`);
    }
  }
  return r.data;
}

const patternCache = new Map<string, RegExp>();

function matches(pattern: string, value: string, ignoreCase: boolean): boolean {
  const key = `${ignoreCase ? 'i' : 's'}${pattern}`;
  let re = patternCache.get(key);
  if (!re) {
    const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, ignoreCase ? 'is' : 's');
    if (patternCache.size > 10_000) patternCache.clear();
    patternCache.set(key, re);
  }
  return re.test(value);
}

/** A stream ARN also matches a pattern written without its creation-time part. */
function resourceMatches(pattern: string, resource: string): boolean {
  if (matches(pattern, resource, false)) return true;
  const m = /^(arn:[^:]*:kinesisvideo:[^:]*:[^:]*:stream\/[^/]+)\/[^/]+$/.exec(resource);
  return m !== null && matches(pattern, m[1]!, false);
}

export type Decision = 'allow' | 'deny' | 'implicit-deny';

/** Evaluates one policy for an action (`kinesisvideo:GetMedia`) on a resource (an ARN or `*`). */
export function evaluate(policy: Policy, action: string, resource: string): Decision {
  let allowed = false;
  for (const s of policy.Statement) {
    if (!s.Action.some((a) => matches(a, action, true))) continue;
    if (!s.Resource.some((r) => resourceMatches(r, resource))) continue;
    if (s.Effect === 'Deny') return 'deny';
    allowed = true;
  }
  return allowed ? 'allow' : 'implicit-deny';
}
