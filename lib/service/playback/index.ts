/**
 * Playback of stored fragments (service-api.md §5.3–5.5): the HLS and DASH session operations, GetClip,
 * and the GET routes of the players' resources.
 */
import type { FastifyInstance } from 'fastify';
import type { ServiceContext } from '../context.js';
import type { OperationTable } from '../operations.js';
import { getClip } from './clip.js';
import { getDASHStreamingSessionURL, registerDashRoutes } from './dash.js';
import { getHLSStreamingSessionURL, registerHlsRoutes } from './hls.js';

export const playbackOperations: OperationTable = {
  json: { getHLSStreamingSessionURL, getDASHStreamingSessionURL },
  streaming: { getClip },
};

export function registerPlaybackRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  registerHlsRoutes(app, ctx);
  registerDashRoutes(app, ctx);
}
