/**
 * The table of API operations the server answers. Every operation is `POST /<name>` (any path
 * prefix is allowed, service-api.md §1.3) with a JSON body. JSON operations return an object
 * that is sent as the response body; streaming operations write the response themselves and
 * must throw a KvsApiError *before* writing anything when the request is invalid.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServiceContext } from './context.js';

/** What an operation may need to know about the request besides its body. */
export interface RequestInfo {
  /**
   * The base URL the client reached this server at (scheme://host:port): the configured
   * publicUrl, else the request's Host header (with the listening port when it has none),
   * else the listening address. Endpoints and
   * session URLs handed back to clients start with it, so a camera on the network, or one
   * behind a proxy, is given an address it can reach.
   */
  baseUrl: string;
}

export type JsonOperation = (ctx: ServiceContext, input: unknown, request: RequestInfo) => object | Promise<object>;
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
