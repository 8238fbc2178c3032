/**
 * `openkvs demo` (what `npm start` runs): the server on an embedded data dir, a `demo` stream,
 * and a GStreamer test-pattern camera encoded to H.264 and uploaded with PutMedia. Ctrl-C ends
 * the camera with EOS, waits for the last PERSISTED ack and stops the server.
 */
import { spawn } from 'node:child_process';
import {
  CreateStreamCommand,
  DescribeStreamCommand,
  KinesisVideoClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-kinesis-video';
import { putMedia } from '../producer/put-media-client.js';
import { startServer } from '../service/server.js';

const STREAM = 'demo';

export async function runDemo(opts: { port: number; dataDir: string }): Promise<{ stop(): Promise<void> }> {
  const server = await startServer({ port: opts.port, dataDir: opts.dataDir, logLevel: 'warn' });
  const kv = new KinesisVideoClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'openkvs', secretAccessKey: 'openkvs' },
  });
  try {
    await kv.send(new DescribeStreamCommand({ StreamName: STREAM }));
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
    await kv.send(new CreateStreamCommand({ StreamName: STREAM, DataRetentionInHours: 24, MediaType: 'video/h264' }));
  }

  const camera = spawn(
    'gst-launch-1.0',
    [
      '-q', '-e',
      'videotestsrc', 'is-live=true', 'pattern=ball', '!',
      'video/x-raw,format=I420,width=640,height=360,framerate=30/1', '!',
      'x264enc', 'tune=zerolatency', 'key-int-max=30', 'bitrate=1000', '!',
      'h264parse', '!',
      'matroskamux', 'streamable=true', '!',
      'fdsink', 'fd=1',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  camera.on('error', (err) => {
    process.stderr.write(`openkvs demo: cannot run gst-launch-1.0 (${err.message}); run scripts/bootstrap.sh\n`);
  });

  let persisted = 0;
  let lastAck = '';
  const upload = putMedia({
    endpoint: server.url,
    streamName: STREAM,
    timecodeType: 'RELATIVE',
    onAck: (ack) => {
      if (ack.EventType === 'PERSISTED') persisted++;
      if (ack.EventType === 'ERROR') process.stderr.write(`openkvs demo: ERROR ack ${ack.ErrorId} ${ack.ErrorCode}\n`);
      lastAck = ack.EventType;
    },
  });
  camera.stdout.on('data', (chunk: Buffer) => void upload.write(chunk));
  const cameraDone = new Promise<void>((resolve) => camera.on('close', () => resolve()));

  process.stdout.write(
    [
      `openkvs listening on ${server.url}`,
      `demo camera streaming into stream "${STREAM}" (data in ${opts.dataDir})`,
      '',
      'Read it back with any AWS SDK or CLI pointed at this endpoint, for example:',
      `  aws kinesis-video-media get-media --endpoint-url ${server.url} --stream-name ${STREAM} \\`,
      `      --start-selector StartSelectorType=NOW demo.mkv --region us-east-1   # then: ffplay demo.mkv`,
      `  aws kinesis-video-archived-media list-fragments --endpoint-url ${server.url} --stream-name ${STREAM} --region us-east-1`,
      '',
      'Ctrl-C stops the camera, waits for the last fragment to be persisted, and stops the server.',
      '',
    ].join('\n'),
  );
  const progress = setInterval(() => {
    process.stdout.write(`\rfragments persisted: ${persisted}   last ack: ${lastAck}      `);
  }, 1000);

  return {
    async stop() {
      clearInterval(progress);
      process.stdout.write('\nstopping: draining the camera…\n');
      camera.kill('SIGINT');
      await cameraDone;
      await upload.end();
      await server.close();
      process.stdout.write(`stopped; ${persisted} fragments persisted\n`);
    },
  };
}
