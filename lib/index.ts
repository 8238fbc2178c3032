/** openkvs public API. */
export { startServer } from './service/server.js';
export type { OpenKvsServer, ServerOptions } from './service/server.js';
export type { ServiceLimits } from './service/context.js';
export { OpenKvsError, KvsApiError } from './errors.js';
export type { KvsApiErrorCode } from './errors.js';
export { putMedia } from './producer/put-media-client.js';
export { pluginPath } from './plugin-path.js';
export type { PutMediaAck, PutMediaOptions, PutMediaSession } from './producer/put-media-client.js';
