/** openkvs public API. */
export { startServer } from './service/server.js';
export type { OpenKvsServer, ServerOptions } from './service/server.js';
export type { ServiceLimits } from './service/context.js';
export { OpenKvsError, KvsApiError } from './errors.js';
export type { KvsApiErrorCode } from './errors.js';
export { putMedia } from './producer/put-media-client.js';
export { pluginPath } from './plugin-path.js';
export type { PutMediaAck, PutMediaOptions, PutMediaSession } from './producer/put-media-client.js';
export { CredentialsError, StreamConfigError } from './errors.js';
export type { CredentialsErrorCode, StreamConfigErrorCode } from './errors.js';
export { toProvider } from './credentials/credentials.js';
export type { Credentials, CredentialsOption, CredentialsProfile, CredentialsProvider } from './credentials/credentials.js';
export { CredentialsRefresher } from './credentials/refresher.js';
export type { CredentialsRefresherEvents, CredentialsRefresherOptions } from './credentials/refresher.js';
export { ensureStream } from './streams/ensure-stream.js';
export type { EnsureStreamResult } from './streams/ensure-stream.js';
export type { EnsureStreamOptions } from './streams/ensure-stream-options.js';
