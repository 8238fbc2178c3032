/**
 * Drop-in check (issue 11): the gst-launch-1.0 lines that use kvssink in the AWS Kinesis Video
 * Streams Developer Guide and in the AWS producer SDK's docs, run against an openkvs server.
 *
 * Each row keeps the published line and the mechanical substitutions that make it run here:
 * a camera becomes `videotestsrc is-live=true num-buffers=…` (a camera that outputs H.264 becomes
 * that pattern encoded by x264enc into byte-stream, as a UVC H.264 camera delivers it), a
 * microphone `audiotestsrc is-live=true num-buffers=…`, a platform encoder x264enc with the same
 * key-frame interval and bitrate, an RTSP camera the test RTSP server, a file one written here,
 * and the placeholders (YourAccessKey, YourAWSRegion, …) real values. Every kvssink property of
 * the published line is kept (checked below) unless the row says why not. kvssink reaches the
 * server through CONTROL_PLANE_URI, the AWS element's own variable, so no line gains an
 * `endpoint` property. The server requires one access key: a line that sets access-key/secret-key
 * runs with a different, unknown key pair in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, so the
 * properties must win, as in the AWS element; the other lines take the key from the environment,
 * as their pages tell the reader to export it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gstLaunch, hasElement, type GstRun } from '../helpers/gst.js';
import { startRtspServer, type RtspServer } from '../helpers/rtsp-server.js';
import { DeleteStreamCommand, DescribeStreamCommand } from '@aws-sdk/client-kinesis-video';
import { credentials, fragmentMedia, listAllFragments, parseFragments, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

// Pages the lines come from.
const DG_ARCHIVE =
  'AWS KVS Developer Guide, "Example: Kinesis Video Streams Producer SDK GStreamer Plugin" (awsdocs/AWS-Kinesis-Video-Documentation doc_source/examples-gstreamer-plugin.md)';
const DG_PLUGIN = 'https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/examples-gstreamer-plugin.html';
const DG_PARAMS = 'https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/examples-gstreamer-plugin-parameters.html';
const DG_RPI_RUN = 'https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/producersdk-cpp-rpi-run.html';
const SDK = 'awslabs/amazon-kinesis-video-streams-producer-sdk-cpp';
const LINUX = `${SDK} docs/linux.md`;
const RPI = `${SDK} docs/raspberry-pi.md`;
const MACOS = `${SDK} docs/macos.md`;
const WINDOWS = `${SDK} docs/windows.md`;

const KEY_ID = 'AKIDGUIDELINES000001';
const SECRET = 'guide/secret/key/for/the/aws/doc/lines';
const FPS30_FRAMES = 60; // two seconds of a 30 fps camera
const AUDIO_BUFFERS = 86; // two seconds of audiotestsrc's 1024-sample buffers at 44.1 kHz

// Stand-ins for the devices.
const CAMERA = `videotestsrc is-live=true num-buffers=${FPS30_FRAMES}`;
/** A camera that delivers H.264 itself (byte-stream, as the UVC camera listed in linux.md). */
const H264_CAMERA =
  `${CAMERA} ! video/x-raw,width=640,height=480,framerate=30/1 ! ` +
  'x264enc bframes=0 key-int-max=30 tune=zerolatency speed-preset=ultrafast ! video/x-h264,stream-format=byte-stream,alignment=au';
const MICROPHONE = `audiotestsrc is-live=true num-buffers=${AUDIO_BUFFERS}`;

const PLACEHOLDERS: Array<[string | RegExp, (c: Ctx) => string]> = [
  ['rtsp://YourCameraRtspUrl', (c) => c.rtsp],
  [/"YourAccessKey(Id)?"/g, () => `"${KEY_ID}"`],
  [/"YourSecret(Access)?Key"/g, () => `"${SECRET}"`],
  [/"Your(AWS)?Region"/g, () => '"us-east-1"'],
];

interface Ctx {
  rtsp: string;
  mkv: string;
  mp4: string;
  ts: string;
  hls: string;
}

type Codec = 'V_MPEG4/ISO/AVC' | 'A_AAC';

interface GuideLine {
  id: string;
  sources: string[];
  /** The pipeline as published (after `gst-launch-1.0 [-v]`), whitespace normalised. */
  guide: string;
  /** Mechanical substitutions, published text → text run here; each must occur in `guide`. */
  subs?: Array<[string, string | ((c: Ctx) => string)]>;
  /** kvssink properties of the published line not kept, with the reason. */
  dropped?: Record<string, string>;
  /** 'run': uploads and is read back; 'refused': the element must refuse it as stated. */
  kind: 'run' | 'refused';
  /** Codec ids of the tracks the stream must receive, in track order. */
  tracks?: Codec[];
  /** Exact number of video frames the stream must hold (sources with num-buffers, files). */
  videoFrames?: number;
  /** A live RTSP camera: stop with Ctrl-C (EOS) after this many PERSISTED acks. */
  stopAfterPersisted?: number;
  /** Environment the page has the reader export besides the credentials. */
  env?: Record<string, string>;
  /** For 'refused': what the output must say. */
  refusal?: RegExp;
  note?: string;
}

const IOT_REFUSAL = /iot-certificate credentials are not supported by this kvssink yet/;

const LINES: GuideLine[] = [
  // --- Developer Guide, example launch commands -------------------------------------------
  {
    id: 'dg-rtsp',
    sources: [`${DG_ARCHIVE} examples 1 (Ubuntu), 4 (macOS), 5 (Windows)`],
    guide:
      'rtspsrc location="rtsp://YourCameraRtspUrl" short-header=TRUE ! rtph264depay ! video/x-h264, format=avc,alignment=au ! kvssink stream-name="YourStreamName" storage-size=512 access-key="YourAccessKey" secret-key="YourSecretKey" aws-region="YourAWSRegion"',
    kind: 'refused',
    refusal: /not-negotiated/,
    note:
      'rtph264depay\'s caps carry no width/height, which the video pad requires, in the AWS element\'s template as in ours: the AWS element refuses the line too. The guide later put h264parse (which adds them) before kvssink: next row.',
  },
  {
    id: 'dg-rtsp-h264parse',
    sources: [`${DG_PLUGIN} example 1, later revision (h264parse after the depayloader)`],
    guide:
      'rtspsrc location="rtsp://YourCameraRtspUrl" short-header=TRUE ! rtph264depay ! h264parse ! kvssink stream-name="YourStreamName" storage-size=512 access-key="YourAccessKey" secret-key="YourSecretKey" aws-region="YourAWSRegion"',
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    stopAfterPersisted: 3,
  },
  {
    id: 'dg-usb-encode',
    sources: [`${DG_ARCHIVE} example 2 (USB camera, Ubuntu)`],
    guide:
      'v4l2src do-timestamp=TRUE device=/dev/video0 ! videoconvert ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! x264enc bframes=0 key-int-max=45 bitrate=500 ! video/x-h264,stream-format=avc,alignment=au,profile=baseline ! kvssink stream-name="YourStreamName" storage-size=512 access-key="YourAccessKey" secret-key="YourSecretKey" aws-region="YourAWSRegion"',
    subs: [['v4l2src do-timestamp=TRUE device=/dev/video0', CAMERA]],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'dg-usb-h264',
    sources: [`${DG_ARCHIVE} example 3 (pre-encoded USB camera, Ubuntu)`],
    guide:
      'v4l2src do-timestamp=TRUE device=/dev/video0 ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! kvssink stream-name="plugin" storage-size=512 access-key="YourAccessKey" secret-key="YourSecretKey" aws-region="YourAWSRegion"',
    subs: [['v4l2src do-timestamp=TRUE device=/dev/video0', H264_CAMERA]],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'dg-rpi-frame-timestamp',
    sources: [`${DG_ARCHIVE} examples 6 and 7 (Raspberry Pi)`],
    guide:
      'v4l2src do-timestamp=TRUE device=/dev/video0 ! videoconvert ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! omxh264enc control-rate=1 target-bitrate=5120000 periodicity-idr=45 inline-header=FALSE ! h264parse ! video/x-h264,stream-format=avc,alignment=au,width=640,height=480,framerate=30/1,profile=baseline ! kvssink stream-name="YourStreamName" frame-timestamp=dts-only access-key="YourAccessKey" secret-key="YourSecretKey" aws-region="YourAWSRegion"',
    subs: [
      ['v4l2src do-timestamp=TRUE device=/dev/video0', CAMERA],
      ['omxh264enc control-rate=1 target-bitrate=5120000 periodicity-idr=45 inline-header=FALSE', 'x264enc bitrate=5000 key-int-max=45 bframes=0'],
    ],
    kind: 'refused',
    refusal: /no property "frame-timestamp" in element/,
    note:
      'frame-timestamp was a property of the 2018 AWS element; the AWS element of today has none, and refuses the line in the same words. The row below runs it without.',
  },
  {
    id: 'dg-rpi',
    sources: [`${DG_ARCHIVE} examples 6 and 7, without frame-timestamp`],
    guide:
      'v4l2src do-timestamp=TRUE device=/dev/video0 ! videoconvert ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! omxh264enc control-rate=1 target-bitrate=5120000 periodicity-idr=45 inline-header=FALSE ! h264parse ! video/x-h264,stream-format=avc,alignment=au,width=640,height=480,framerate=30/1,profile=baseline ! kvssink stream-name="YourStreamName" frame-timestamp=dts-only access-key="YourAccessKey" secret-key="YourSecretKey" aws-region="YourAWSRegion"',
    subs: [
      ['v4l2src do-timestamp=TRUE device=/dev/video0', CAMERA],
      ['omxh264enc control-rate=1 target-bitrate=5120000 periodicity-idr=45 inline-header=FALSE', 'x264enc bitrate=5000 key-int-max=45 bframes=0'],
      [' frame-timestamp=dts-only', ''],
    ],
    dropped: { 'frame-timestamp': 'not a property of the AWS element any more (row dg-rpi-frame-timestamp)' },
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'dg-params-iot',
    sources: [`${DG_PARAMS} "AWS IoT credentials" example`],
    guide:
      '... ! kvssink stream-name="YourStream" aws-region="YourRegion" iot-certificate="iot-certificate,endpoint=credential-account-specific-prefix.credentials.iot.aws-region.amazonaws.com,cert-path=certificateID-certificate.pem.crt,key-path=certificateID-private.pem.key,ca-path=certificate.pem,role-aliases=YourRoleAlias,iot-thing-name=YourThingName"',
    subs: [['...', `${CAMERA} ! x264enc bframes=0 key-int-max=30 speed-preset=ultrafast`]],
    kind: 'refused',
    refusal: IOT_REFUSAL,
    note: 'Needs the AWS IoT credentials endpoint and a device certificate; kvssink accepts the property and refuses the start.',
  },
  {
    id: 'dg-rpi-run-testsrc',
    sources: [`${DG_RPI_RUN} "Sample GStreamer video"`],
    guide:
      'videotestsrc is-live=true ! video/x-raw,framerate=10/1,width=640,height=480 ! clockoverlay time-format="%a %B %d, %Y %I:%M:%S %p" ! x264enc bframes=0 key-int-max=10 ! h264parse ! kvssink stream-name="YourStreamName"',
    subs: [
      ['videotestsrc is-live=true', 'videotestsrc is-live=true num-buffers=20'],
      // clockoverlay (pango) is optional here: without it the line is the same minus the overlay.
      ['clockoverlay time-format="%a %B %d, %Y %I:%M:%S %p" ! ', () => (hasElement('clockoverlay') ? 'clockoverlay time-format="%a %B %d, %Y %I:%M:%S %p" ! ' : '')],
    ],
    env: { AWS_DEFAULT_REGION: 'us-west-2' },
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    videoFrames: 20,
  },

  // --- producer SDK docs: Linux, Raspberry Pi -----------------------------------------------
  {
    id: 'sdk-rtsp',
    sources: [LINUX, RPI],
    guide: 'rtspsrc location=rtsp://YourCameraRtspUrl short-header=TRUE ! rtph264depay ! h264parse ! kvssink stream-name=YourStreamName storage-size=128',
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    stopAfterPersisted: 3,
  },
  {
    id: 'sdk-rtsp-iot',
    sources: [LINUX, RPI, MACOS, WINDOWS],
    guide:
      'rtspsrc location="rtsp://YourCameraRtspUrl" short-header=TRUE ! rtph264depay ! h264parse ! kvssink stream-name="iot-stream" iot-certificate="iot-certificate,endpoint=endpoint,cert-path=/path/to/certificate,key-path=/path/to/private/key,ca-path=/path/to/ca-cert,role-aliases=role-aliases"',
    kind: 'refused',
    refusal: IOT_REFUSAL,
    note: 'Needs the AWS IoT credentials endpoint and a device certificate; kvssink accepts the property and refuses the start.',
  },
  {
    id: 'sdk-usb-encode',
    sources: [`${LINUX} (USB camera, Ubuntu)`, `${RPI} ("or use a different encoder")`],
    guide:
      'v4l2src device=/dev/video0 ! videoconvert ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! x264enc bframes=0 key-int-max=45 bitrate=500 tune=zerolatency ! video/x-h264,stream-format=avc,alignment=au ! kvssink stream-name=YourStreamName storage-size=128 access-key="YourAccessKey" secret-key="YourSecretKey"',
    subs: [['v4l2src device=/dev/video0', CAMERA]],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-usb-h264',
    sources: [LINUX, RPI],
    guide:
      'v4l2src device=/dev/video0 ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! kvssink stream-name=YourStreamName storage-size=128 access-key="YourAccessKey" secret-key="YourSecretKey"',
    subs: [['v4l2src device=/dev/video0', H264_CAMERA]],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-av',
    sources: [`${LINUX} (audio and video)`],
    guide:
      'v4l2src device=/dev/video0 ! videoconvert ! video/x-raw,width=640,height=480,framerate=30/1,format=I420 ! x264enc bframes=0 key-int-max=45 bitrate=500 tune=zerolatency ! h264parse ! video/x-h264,stream-format=avc,alignment=au,profile=baseline ! kvssink name=sink stream-name="my-stream-name" access-key="YourAccessKey" secret-key="YourSecretKey" alsasrc device=hw:1,0 ! audioconvert ! avenc_aac ! queue ! sink.',
    subs: [
      ['v4l2src device=/dev/video0', CAMERA],
      ['alsasrc device=hw:1,0', MICROPHONE],
    ],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC', 'A_AAC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-av-h264',
    sources: [`${LINUX} (audio and H.264 camera)`, RPI],
    guide:
      'v4l2src device=/dev/video0 ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! kvssink name=sink stream-name="my-stream-name" access-key="YourAccessKey" secret-key="YourSecretKey" alsasrc device=hw:1,0 ! audioconvert ! avenc_aac ! queue ! sink.',
    subs: [
      ['v4l2src device=/dev/video0', H264_CAMERA],
      ['alsasrc device=hw:1,0', MICROPHONE],
    ],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC', 'A_AAC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-rpi-omx',
    sources: [`${RPI} (camera source, omxh264enc)`],
    guide:
      'v4l2src do-timestamp=TRUE device=/dev/video0 ! videoconvert ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! omxh264enc periodicty-idr=45 inline-header=FALSE ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! kvssink stream-name=YourStreamName access-key="YourAccessKey" secret-key="YourSecretKey"',
    subs: [
      ['v4l2src do-timestamp=TRUE device=/dev/video0', CAMERA],
      ['omxh264enc periodicty-idr=45 inline-header=FALSE', 'x264enc key-int-max=45 bframes=0'],
    ],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-rpi-av-omx',
    sources: [`${RPI} (audio and video, omxh264enc)`],
    guide:
      'v4l2src device=/dev/video0 ! videoconvert ! video/x-raw,width=640,height=480,framerate=30/1,format=I420 ! omxh264enc periodicty-idr=45 inline-header=FALSE ! h264parse ! video/x-h264,stream-format=avc,alignment=au,profile=baseline ! kvssink name=sink stream-name="my-stream-name" access-key="YourAccessKey" secret-key="YourSecretKey" alsasrc device=hw:1,0 ! audioconvert ! avenc_aac ! queue ! sink.',
    subs: [
      ['v4l2src device=/dev/video0', CAMERA],
      ['omxh264enc periodicty-idr=45 inline-header=FALSE', 'x264enc key-int-max=45 bframes=0'],
      ['alsasrc device=hw:1,0', MICROPHONE],
    ],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC', 'A_AAC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-file-mkv',
    sources: [RPI, MACOS, WINDOWS],
    guide:
      'filesrc location="YourAudioVideo.mkv" ! matroskademux name=demux ! queue ! h264parse ! kvssink name=sink stream-name="my_stream_name" access-key="YourAccessKeyId" secret-key="YourSecretAccessKey" streaming-type=offline demux. ! queue ! aacparse ! sink.',
    subs: [['"YourAudioVideo.mkv"', (c) => `"${c.mkv}"`]],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC', 'A_AAC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-file-mp4',
    sources: [RPI, MACOS, WINDOWS],
    guide:
      'filesrc location="YourAudioVideo.mp4" ! qtdemux name=demux ! queue ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! kvssink name=sink stream-name="audio-video-file" access-key="YourAccessKeyId" secret-key="YourSecretAccessKey" streaming-type=offline demux. ! queue ! aacparse ! sink.',
    subs: [['"YourAudioVideo.mp4"', (c) => `"${c.mp4}"`]],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC', 'A_AAC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-file-ts',
    sources: [RPI, MACOS, WINDOWS],
    guide:
      'filesrc location="YourAudioVideo.ts" ! tsdemux name=demux ! queue ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! kvssink name=sink stream-name="audio-video-file" access-key="YourAccessKeyId" secret-key="YourSecretAccessKey" streaming-type=offline demux. ! queue ! aacparse ! sink.',
    subs: [['"YourAudioVideo.ts"', (c) => `"${c.ts}"`]],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC', 'A_AAC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-iot-thing-name',
    sources: [`${RPI} and ${MACOS} (IoT certificate, stream-name other than the thing name)`],
    guide:
      'rtspsrc location="rtsp://YourCameraRtspUrl" short-header=TRUE ! rtph264depay ! video/x-h264, format=avc,alignment=au ! h264parse ! kvssink name=aname storage-size=512 iot-certificate="iot-certificate,endpoint=xxxxx.credentials.iot.ap-southeast-2.amazonaws.com,cert-path=/greengrass/v2/thingCert.crt,key-path=/greengrass/v2/privKey.key,ca-path=/greengrass/v2/rootCA.pem,role-aliases=KvsCameraIoTRoleAlias,iot-thing-name=myThingName123" aws-region="ap-southeast-2" log-config="/etc/mtdata/kvssink-log.config" stream-name=myThingName123-video1',
    kind: 'refused',
    refusal: IOT_REFUSAL,
    note: 'Needs the AWS IoT credentials endpoint and a device certificate. The row below runs the rest of the line.',
  },
  {
    id: 'sdk-iot-thing-name-rest',
    sources: [`${RPI} and ${MACOS}, the same line without iot-certificate`],
    guide:
      'rtspsrc location="rtsp://YourCameraRtspUrl" short-header=TRUE ! rtph264depay ! video/x-h264, format=avc,alignment=au ! h264parse ! kvssink name=aname storage-size=512 iot-certificate="iot-certificate,endpoint=xxxxx.credentials.iot.ap-southeast-2.amazonaws.com,cert-path=/greengrass/v2/thingCert.crt,key-path=/greengrass/v2/privKey.key,ca-path=/greengrass/v2/rootCA.pem,role-aliases=KvsCameraIoTRoleAlias,iot-thing-name=myThingName123" aws-region="ap-southeast-2" log-config="/etc/mtdata/kvssink-log.config" stream-name=myThingName123-video1',
    subs: [
      [
        ' iot-certificate="iot-certificate,endpoint=xxxxx.credentials.iot.ap-southeast-2.amazonaws.com,cert-path=/greengrass/v2/thingCert.crt,key-path=/greengrass/v2/privKey.key,ca-path=/greengrass/v2/rootCA.pem,role-aliases=KvsCameraIoTRoleAlias,iot-thing-name=myThingName123"',
        '',
      ],
    ],
    dropped: { 'iot-certificate': 'credentials come from the environment instead (row sdk-iot-thing-name)' },
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    stopAfterPersisted: 3,
    note: 'log-config names a file that does not exist here; the AWS element starts without it too.',
  },

  // --- producer SDK docs: macOS --------------------------------------------------------------
  {
    id: 'sdk-macos-rtsp',
    sources: [MACOS],
    guide:
      'rtspsrc location=rtsp://YourCameraRtspUrl short-header=TRUE ! rtph264depay ! h264parse ! kvssink stream-name=YourStreamName storage-size=128 access-key="YourAccessKey" secret-key="YourSecretKey"',
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    stopAfterPersisted: 3,
  },
  {
    id: 'sdk-macos-vtenc',
    sources: [`${MACOS} (camera, vtenc_h264_hw)`],
    guide:
      'autovideosrc ! videoconvert ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! vtenc_h264_hw allow-frame-reordering=FALSE realtime=TRUE max-keyframe-interval=45 bitrate=500 ! h264parse ! video/x-h264,stream-format=avc,alignment=au,profile=baseline ! kvssink stream-name=YourStreamName storage-size=128 access-key="YourAccessKey" secret-key="YourSecretKey"',
    subs: [
      ['autovideosrc', CAMERA],
      ['vtenc_h264_hw allow-frame-reordering=FALSE realtime=TRUE max-keyframe-interval=45 bitrate=500', 'x264enc bframes=0 tune=zerolatency key-int-max=45 bitrate=500'],
    ],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-macos-av-vtenc',
    sources: [`${MACOS} (audio and raw video; the webcam variant differs only in device-index=1 and osxaudiosrc device=67)`],
    guide:
      'avfvideosrc ! videoconvert ! vtenc_h264_hw allow-frame-reordering=FALSE realtime=TRUE max-keyframe-interval=45 ! kvssink name=sink stream-name="my_stream_name" access-key="YourAccessKeyId" secret-key="YourSecretAccessKey" osxaudiosrc ! audioconvert ! avenc_aac ! queue ! sink.',
    subs: [
      ['avfvideosrc', CAMERA],
      ['vtenc_h264_hw allow-frame-reordering=FALSE realtime=TRUE max-keyframe-interval=45', 'x264enc bframes=0 tune=zerolatency key-int-max=45'],
      ['osxaudiosrc', MICROPHONE],
    ],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC', 'A_AAC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-macos-av-h264',
    sources: [`${MACOS} (audio and H.264 camera)`],
    guide:
      'avfvideosrc device-index=1 ! h264parse ! kvssink name=sink stream-name="my_stream_name" access-key="YourAccessKeyId" secret-key="YourSecretAccessKey" osxaudiosrc ! audioconvert ! avenc_aac ! queue ! sink.',
    subs: [
      ['avfvideosrc device-index=1', H264_CAMERA],
      ['osxaudiosrc', MICROPHONE],
    ],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC', 'A_AAC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-macos-hls',
    sources: [`${MACOS} (video from an HLS .m3u8 playlist)`],
    guide:
      'souphttpsrc location="https://.../playlist.m3u8" ! hlsdemux ! tsdemux ! video/x-h264,format=avc,alignment=au ! h264parse ! kvssink stream-name="YourStreamName"',
    subs: [['"https://.../playlist.m3u8"', (c) => `"${c.hls}"`]],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    videoFrames: FPS30_FRAMES,
  },
  // Not run: macos.md's "audio and video from HLS" line, `souphttpsrc … ! hlsdemux name=mux ! tsdemux
  // ! video/x-h264,… ! h264parse ! kvssink … name=sink mux. ! queue ! aacparse ! sink.`, links a
  // second hlsdemux pad (MPEG-TS, not AAC) to aacparse: it needs a playlist with a separate AAC
  // rendition, and with an ordinary playlist it does not link with any sink.

  // --- producer SDK docs: Windows ------------------------------------------------------------
  {
    id: 'sdk-windows-ks',
    sources: [`${WINDOWS} (2.1, video)`],
    guide:
      'ksvideosrc do-timestamp=TRUE ! video/x-raw,width=640,height=480,framerate=30/1 ! videoconvert ! x264enc bframes=0 key-int-max=45 bitrate=512 ! video/x-h264,profile=baseline,stream-format=avc,alignment=au ! kvssink stream-name="stream-name" access-key="YourAccessKeyId" secret-key="YourSecretAccessKey"',
    subs: [['ksvideosrc do-timestamp=TRUE', CAMERA]],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-windows-av',
    sources: [`${WINDOWS} (2.2, audio and raw video)`],
    guide:
      'ksvideosrc ! videoconvert ! x264enc bframes=0 key-int-max=45 bitrate=512 tune=zerolatency ! video/x-h264,profile=baseline,stream-format=avc,alignment=au ! kvssink name=sink stream-name="stream-name" access-key="YourAccessKeyId" secret-key="YourSecretAccessKey" wasapisrc device="\\{0.0.1.00000000\\}.\\{f1245929-0c97-4389-9c28-1ca9cb01576b\\}" ! audioconvert ! avenc_aac ! queue ! sink.',
    subs: [
      ['ksvideosrc', CAMERA],
      ['wasapisrc device="\\{0.0.1.00000000\\}.\\{f1245929-0c97-4389-9c28-1ca9cb01576b\\}"', MICROPHONE],
    ],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC', 'A_AAC'],
    videoFrames: FPS30_FRAMES,
  },
  {
    id: 'sdk-windows-av-h264',
    sources: [`${WINDOWS} (2.3, audio and H.264 video)`],
    guide:
      'ksvideosrc ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! kvssink name=sink stream-name="stream-name" access-key="YourAccessKeyId" secret-key="YourSecretAccessKey" wasapisrc device="\\{0.0.1.00000000\\}.\\{f1245929-0c97-4389-9c28-1ca9cb01576b\\}" ! audioconvert ! avenc_aac ! queue ! sink.',
    subs: [
      ['ksvideosrc', H264_CAMERA],
      ['wasapisrc device="\\{0.0.1.00000000\\}.\\{f1245929-0c97-4389-9c28-1ca9cb01576b\\}"', MICROPHONE],
    ],
    kind: 'run',
    tracks: ['V_MPEG4/ISO/AVC', 'A_AAC'],
    videoFrames: FPS30_FRAMES,
  },
];

/** Whitespace-separated tokens, keeping quoted strings whole. */
function tokens(line: string): string[] {
  return line.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}

/** The kvssink element's properties in a launch line: the key=value tokens after `kvssink`. */
function kvssinkProperties(line: string): Map<string, string> {
  const t = tokens(line);
  const at = t.indexOf('kvssink');
  const props = new Map<string, string>();
  if (at < 0) return props;
  for (const tok of t.slice(at + 1)) {
    const eq = tok.indexOf('=');
    if (tok === '!' || eq <= 0) break;
    props.set(tok.slice(0, eq), tok.slice(eq + 1));
  }
  return props;
}

function applyPlaceholders(line: string, c: Ctx): string {
  return PLACEHOLDERS.reduce((l, [from, to]) => l.replace(from, to(c)), line);
}

/** The line as run here: the row's substitutions, then the placeholders. */
function lineToRun(row: GuideLine, c: Ctx): string {
  let line = row.guide;
  for (const [from, to] of row.subs ?? []) line = line.replace(from, typeof to === 'string' ? to : to(c));
  return applyPlaceholders(line, c);
}

const setsCredentials = (row: GuideLine) => kvssinkProperties(row.guide).has('access-key');

async function readBack(t: TestServer, stream: string) {
  const numbers = (await listAllFragments(t.archived, stream)).map((f) => f.FragmentNumber!);
  if (numbers.length === 0) return [];
  return parseFragments(await fragmentMedia(t.archived, stream, numbers));
}

function encode(pipeline: string): void {
  const r = spawnSync('gst-launch-1.0', ['-q', ...tokens(pipeline)], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  if (r.status !== 0) throw new Error(`gst-launch-1.0 ${pipeline}\n${r.stdout}${r.stderr}`);
}

describe('the kvssink lines of the AWS developer guide and producer SDK docs, against openkvs', () => {
  const dir = tempDir('openkvs-guide-');
  let t: TestServer;
  let rtsp: RtspServer;
  let files: http.Server;
  let ctx: Ctx;

  beforeAll(async () => {
    // One access key for the lines, and the test's own for the SDK clients that read back.
    t = await startTestServer({ accessKeys: { [KEY_ID]: SECRET, [credentials.accessKeyId]: credentials.secretAccessKey } });
    // The media files the file and HLS lines upload: 2 s of 30 fps H.264 (no B-frames) and AAC.
    const v = `videotestsrc num-buffers=${FPS30_FRAMES} ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 bframes=0 speed-preset=ultrafast ! h264parse ! queue`;
    const a = `audiotestsrc num-buffers=${AUDIO_BUFFERS} ! audio/x-raw,rate=44100,channels=1 ! avenc_aac ! aacparse ! queue`;
    for (const [ext, mux] of [['mkv', 'matroskamux'], ['mp4', 'mp4mux'], ['ts', 'mpegtsmux']] as const) {
      encode(`${v} ! ${mux} name=m ! filesink location=${path.join(dir, `av.${ext}`)} ${a} ! m.`);
    }
    const hlsDir = path.join(dir, 'hls');
    mkdirSync(hlsDir);
    // An HLS playlist of one 2 s MPEG-TS segment, video only (hlssink2 sometimes hangs at EOS).
    encode(`${v} ! mpegtsmux ! filesink location=${hlsDir}/segment0.ts`);
    writeFileSync(
      path.join(hlsDir, 'playlist.m3u8'),
      '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\nsegment0.ts\n#EXT-X-ENDLIST\n',
    );
    files = http.createServer((req, res) => {
      try {
        const body = readFileSync(path.join(hlsDir, path.basename(new URL(req.url!, 'http://x').pathname)));
        res.writeHead(200, { 'content-length': body.length }).end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    rtsp = await startRtspServer();
    ctx = {
      rtsp: rtsp.url,
      mkv: path.join(dir, 'av.mkv'),
      mp4: path.join(dir, 'av.mp4'),
      ts: path.join(dir, 'av.ts'),
      hls: `http://127.0.0.1:${(files.address() as AddressInfo).port}/playlist.m3u8`,
    };
  });
  afterAll(async () => {
    await rtsp?.stop();
    files?.close();
    await t?.close();
  });

  /** Several lines name the same stream: each row starts without it (kvssink creates it). */
  async function deleteStream(name: string): Promise<void> {
    try {
      const d = await t.kv.send(new DescribeStreamCommand({ StreamName: name }));
      await t.kv.send(new DeleteStreamCommand({ StreamARN: d.StreamInfo!.StreamARN! }));
    } catch (e) {
      if ((e as { name?: string }).name !== 'ResourceNotFoundException') throw e;
    }
  }

  it('keeps every kvssink property of each published line, and each substitution applies', () => {
    const c: Ctx = { rtsp: 'rtsp://127.0.0.1:1/cam', mkv: '/m.mkv', mp4: '/m.mp4', ts: '/m.ts', hls: 'http://127.0.0.1:1/p.m3u8' };
    for (const row of LINES) {
      for (const [from] of row.subs ?? []) expect(row.guide, `${row.id}: substitution of ${from}`).toContain(from);
      const published = kvssinkProperties(applyPlaceholders(row.guide, c));
      const run = kvssinkProperties(lineToRun(row, c));
      expect(published.size, row.id).toBeGreaterThan(0);
      for (const [name, value] of published) {
        if (row.dropped?.[name]) expect(run.has(name), `${row.id}: ${name} is dropped`).toBe(false);
        else expect(run.get(name), `${row.id}: kvssink ${name}`).toBe(value);
      }
      expect([...run.keys()].filter((k) => !published.has(k)), `${row.id}: kvssink properties added`).toEqual([]);
    }
  });

  for (const row of LINES) {
    it(`${row.id}: ${row.kind === 'run' ? 'uploads' : 'is refused as documented'} (${row.sources.join('; ')})`, async () => {
      const line = lineToRun(row, ctx);
      const stream = kvssinkProperties(line).get('stream-name')!.replace(/^"|"$/g, '');
      await deleteStream(stream);
      // A line with access-key/secret-key runs with another key pair in the environment: the
      // properties must be the ones used. The other lines get the key from the environment.
      const env: Record<string, string> = {
        CONTROL_PLANE_URI: t.url,
        AWS_DEFAULT_REGION: '',
        HOME: dir,
        ...(setsCredentials(row)
          ? { AWS_ACCESS_KEY_ID: 'AKIDNOTTHEGUIDEKEY01', AWS_SECRET_ACCESS_KEY: 'not-the-key-the-line-sets' }
          : { AWS_ACCESS_KEY_ID: KEY_ID, AWS_SECRET_ACCESS_KEY: SECRET }),
        ...row.env,
      };
      const run: GstRun = gstLaunch(line, env);
      if (row.kind === 'refused') {
        let timer: NodeJS.Timeout | undefined;
        const code = await Promise.race([run.exited, new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), 30_000)))]);
        clearTimeout(timer);
        if (code === 'hung') run.child.kill('SIGKILL');
        expect(code, run.output()).not.toBe('hung');
        expect(code, run.output()).not.toBe(0);
        expect(run.output()).toMatch(row.refusal!);
        return;
      }
      if (row.stopAfterPersisted) {
        let persisted = 0;
        await run.waitFor((m) => m.name === 'kvssink-fragment-ack' && m.fields['event-type'] === 'PERSISTED' && ++persisted >= row.stopAfterPersisted!, 45_000);
        run.child.kill('SIGINT'); // gst-launch -e: Ctrl-C sends EOS, as a reader stopping the camera
      }
      const code = await run.exited;
      expect(code, run.output().slice(-4000)).toBe(0);
      expect(run.output()).not.toMatch(/WARNING: erroneous pipeline|could not set property|no property/);
      expect(run.messages.some((m) => m.name === 'kvssink-stream-ready')).toBe(true);
      const persisted = run.messages.filter((m) => m.name === 'kvssink-fragment-ack' && m.fields['event-type'] === 'PERSISTED');

      const fragments = await readBack(t, stream);
      expect(fragments.length).toBeGreaterThan(0);
      expect(fragments.length).toBe(persisted.length); // every fragment sent before EOS persisted
      for (const f of fragments) expect(f.tracks.map((tr) => tr.codecId)).toEqual(row.tracks);
      const videoTrack = fragments[0]!.tracks.find((tr) => tr.codecId.startsWith('V_'))!.number;
      const video = fragments.flatMap((f) => f.frames.filter((fr) => fr.track === videoTrack));
      expect(fragments.every((f) => f.frames.find((fr) => fr.track === videoTrack)?.keyframe)).toBe(true);
      if (row.videoFrames !== undefined) expect(video.length).toBe(row.videoFrames);
      else expect(video.length).toBeGreaterThan(10);
      if (row.tracks!.includes('A_AAC')) {
        const audioTrack = fragments[0]!.tracks.find((tr) => tr.codecId === 'A_AAC')!.number;
        expect(fragments.flatMap((f) => f.frames.filter((fr) => fr.track === audioTrack)).length).toBeGreaterThan(40);
      }
    });
  }
});
