/**
 * The table of API operations the server answers. Every operation is `POST /<name>` (any path
 * prefix is allowed, service-api.md §1.3) with a JSON body. JSON operations return an object
 * that is sent as the response body; streaming operations write the response themselves and
 * must throw a KvsApiError *before* writing anything when the request is invalid.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServiceContext } from './context.js';

export type JsonOperation = (ctx: ServiceContext, input: unknown) => object | Promise<object>;
export type StreamingOperation = (
  ctx: ServiceContext,
  input: unknown,
  req: IncomingMessage,
  res: ServerResponse,
) => Promise<void>;

export interface OperationTable {
  json: Record<string, JsonOperation>;
  streaming: Record<string, StreamingOperation>;
}
