/**
 * `--source` of `openkvs stream`: a camera, file or test pattern as the GStreamer description of
 * an H.264 producer (everything up to kvssink).
 */
import { OpenKvsError } from '../errors.js';

const ENCODE = 'x264enc tune=zerolatency key-int-max=30 bitrate=2000 speed-preset=veryfast ! h264parse';

export function sourceDescription(source: string): string {
  const quote = (s: string) => `"${s.replace(/(["\\])/g, '\\$1')}"`;
  if (source === 'test') {
    return `videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! ${ENCODE}`;
  }
  if (source.startsWith('file:')) {
    const file = source.slice('file:'.length);
    if (!file) throw new OpenKvsError('INVALID_ARGUMENT', 'file: needs a path, e.g. file:/videos/clip.mp4');
    // Passthrough (no re-encoding), paced in real time.
    return `filesrc location=${quote(file)} ! parsebin ! video/x-h264 ! h264parse ! identity sync=true`;
  }
  if (source.startsWith('rtsp://') || source.startsWith('rtsps://')) {
    return `rtspsrc location=${quote(source)} latency=200 protocols=tcp ! rtph264depay ! h264parse`;
  }
  if (source.startsWith('v4l2:')) {
    const device = source.slice('v4l2:'.length) || '/dev/video0';
    return `v4l2src device=${quote(device)} ! videoconvert ! video/x-raw,format=I420 ! ${ENCODE}`;
  }
  throw new OpenKvsError(
    'INVALID_ARGUMENT',
    `unknown --source "${source}": expected test, file:PATH, rtsp://… or v4l2:/dev/videoN`,
  );
}
