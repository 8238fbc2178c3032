/**
 * NextToken of the archived-media APIs: the paging cursor as base64 JSON (service-api.md §2:
 * archive tokens are base64), checked against the operation's schema when it comes back.
 */
import type { z } from 'zod';
import { invalidArgument } from '../../errors.js';

export function pageToken<S extends z.ZodType>(schema: S, operation: string) {
  return {
    encode: (cursor: z.infer<S>): string => Buffer.from(JSON.stringify(cursor)).toString('base64'),
    decode: (token: string): z.infer<S> => {
      try {
        return schema.parse(JSON.parse(Buffer.from(token, 'base64').toString('utf8')));
      } catch {
        throw invalidArgument(`NextToken is not a token returned by ${operation}.`);
      }
    },
  };
}
