/**
 * `openkvs demo` (what `npm start` runs): the server on an embedded data dir, a `demo` stream,
 * and a test-pattern camera uploaded through kvssink running in this process (the Pipeline
 * API). Ctrl-C drains the camera (the last fragment is persisted) and stops the server.
 */
import { Pipeline } from '../pipeline.js';
import { ensureStream } from '../streams/ensure-stream.js';
import { startServer } from '../service/server.js';
import { progressLine } from './stream.js';

const STREAM = 'demo';
// The embedded server does not check signatures; any key pair does.
const CREDENTIALS = { accessKeyId: 'openkvs-demo', secretAccessKey: 'openkvs-demo' };

export async function runDemo(opts: { port: number; dataDir: string }): Promise<{ stop(): Promise<void> }> {
  const server = await startServer({ port: opts.port, dataDir: opts.dataDir, logLevel: 'warn' });
  await ensureStream({
    streamName: STREAM,
    endpoint: server.url,
    region: 'us-east-1',
    credentials: CREDENTIALS,
    dataRetentionInHours: 24,
    mediaType: 'video/h264',
  });
  const camera = new Pipeline(
    'videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 ! ' +
      `x264enc tune=zerolatency key-int-max=30 bitrate=1000 speed-preset=veryfast ! h264parse ! kvssink name=camera stream-name=${STREAM}`,
    { endpoint: server.url, region: 'us-east-1', credentials: CREDENTIALS },
  );
  camera.on('error', (e) => process.stderr.write(`\nopenkvs demo: ${e.message} (${e.code})\n`));
  const tty = process.stdout.isTTY;
  camera.on('stats', (s) => process.stdout.write(tty ? `\r${progressLine(s)}\x1b[K` : `${progressLine(s)}\n`));
  await camera.start();

  process.stdout.write(
    [
      `openkvs listening on ${server.url}`,
      `demo camera streaming into stream "${STREAM}" (data in ${opts.dataDir})`,
      `web console: ${server.url}/#/stream/${STREAM}`,
      '',
      'Read it back with any AWS SDK or CLI pointed at this endpoint, for example:',
      `  aws kinesis-video-media get-media --endpoint-url ${server.url} --stream-name ${STREAM} \\`,
      `      --start-selector StartSelectorType=NOW demo.mkv --region us-east-1   # then: ffplay demo.mkv`,
      `  aws kinesis-video-archived-media list-fragments --endpoint-url ${server.url} --stream-name ${STREAM} --region us-east-1`,
      `Or upload another camera: npx openkvs stream --source test --stream-name cam2 --endpoint ${server.url}`,
      '',
      'Ctrl-C stops the camera, waits for the last fragment to be persisted, and stops the server.',
      '',
    ].join('\n'),
  );

  return {
    async stop() {
      process.stdout.write('\nstopping: draining the camera…\n');
      await camera.stop();
      await server.close();
      process.stdout.write('stopped\n');
    },
  };
}
