/**
 * `codec: auto`: the codecs a camera announces in its SDP, read with RTSP DESCRIBE.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeCamera, mediaOfSdp } from '../../lib/relay/rtsp-describe.js';
import { startRtspServer, type RtspServer } from '../helpers/rtsp-server.js';
import { freePort } from '../helpers/server.js';

let h264: RtspServer;
let h265: RtspServer;
beforeAll(async () => {
  [h264, h265] = await Promise.all([startRtspServer({ audio: true }), startRtspServer({ codec: 'h265' })]);
});
afterAll(async () => {
  await h264?.stop();
  await h265?.stop();
});

it('reads the video codec and the AAC track from a real camera', async () => {
  expect(await describeCamera(h264.url)).toEqual({ video: 'h264', aac: true });
  expect(await describeCamera(h265.url)).toEqual({ video: 'h265', aac: false });
});

it('fails clearly for an unreachable camera or an unknown path', async () => {
  await expect(describeCamera(`rtsp://127.0.0.1:${await freePort()}/cam`)).rejects.toThrow(/ECONNREFUSED/);
  await expect(describeCamera(`rtsp://127.0.0.1:${h264.port}/nothing-here`)).rejects.toThrow(/answered DESCRIBE with 404/);
});

it('authenticates with the user and password of the URL, Basic or Digest, and names a refusal', async () => {
  const user = { name: 'viewer', password: 's3cret:p@ss' };
  const cams = await Promise.all([startRtspServer({ user }), startRtspServer({ user: { ...user, digest: true } })]);
  try {
    for (const cam of cams) {
      const withUser = (password: string) => cam.url.replace('rtsp://', `rtsp://${user.name}:${encodeURIComponent(password)}@`);
      expect(await describeCamera(withUser(user.password))).toEqual({ video: 'h264', aac: false });
      await expect(describeCamera(cam.url)).rejects.toThrow(/401: it asks for a user and password/);
      await expect(describeCamera(withUser('wrong'))).rejects.toThrow(/401: it refused the user "viewer"/);
    }
  } finally {
    await Promise.all(cams.map((c) => c.stop()));
  }
});

it('parses rtpmap lines', () => {
  expect(mediaOfSdp('v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n')).toEqual({ video: 'h265', aac: false });
  expect(mediaOfSdp('m=audio 0 RTP/AVP 97\na=rtpmap:97 mpeg4-generic/48000/2\n')).toEqual({ video: undefined, aac: true });
});
