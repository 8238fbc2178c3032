/**
 * The web console at `/`: plain HTML + ES modules + CSS served from the source tree
 * (`lib/service/console/static/`, no build step) and hls.js from node_modules. Its JSON calls go to
 * the server's own operations (`POST /listStreams`, `/listFragments`, `/getHLSStreamingSessionURL`,
 * `/getClip`), unsigned on an open server; on a server with users the console signs in with an
 * access key, trades it for temporary credentials (`/issueCredentials`) and signs every call
 * with those (static/sigv4.js).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ServiceContext } from '../context.js';
import { packageRoot } from '../../package-root.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export function registerConsole(app: FastifyInstance, _ctx: ServiceContext): void {
  const root = packageRoot();
  const staticDir = path.join(root, 'lib', 'service', 'console', 'static');
  const hlsJs = path.join(root, 'node_modules', 'hls.js', 'dist', 'hls.min.js');

  const sendFile = async (reply: FastifyReply, file: string) => {
    try {
      const data = await readFile(file);
      return reply
        .header('content-type', TYPES[path.extname(file)] ?? 'application/octet-stream')
        .header('cache-control', 'no-cache')
        .send(data);
    } catch {
      return reply.code(404).header('content-type', 'text/plain').send('Not found');
    }
  };

  app.get('/', (_req, reply) => sendFile(reply, path.join(staticDir, 'index.html')));
  app.get('/console', (_req, reply) => reply.redirect('/'));
  app.get('/console/vendor/hls.min.js', (_req, reply) => sendFile(reply, hlsJs));
  app.get('/console/*', (req, reply) => {
    const rel = (req.params as { '*': string })['*'];
    const file = path.resolve(staticDir, rel);
    if (!file.startsWith(staticDir + path.sep)) return reply.code(404).send('Not found');
    return sendFile(reply, file);
  });
}
