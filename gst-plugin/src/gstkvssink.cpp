/**
 * SECTION:element-kvssink
 *
 * kvssink uploads H.264 or H.265 video, optionally with AAC, A-law or mu-law audio, to an AWS
 * Kinesis Video Streams stream with PutMedia, or to any compatible endpoint (the openkvs
 * server). It is a drop-in for the AWS element of the same name: same pads, caps, properties
 * and environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
 * AWS_DEFAULT_REGION, CONTROL_PLANE_URI, KVSSINK_CA_CERT_PATH; also AWS_KVS_CACERT_PATH and
 * AWS_CA_BUNDLE). It accepts byte-stream H.264/H.265, takes `endpoint` and `ca-cert` properties
 * and AWS shared credential profiles, posts its progress as element messages, and posts EOS only
 * once the last fragment is persisted (or stop-stream-timeout has passed).
 *
 * |[
 * gst-launch-1.0 -e v4l2src ! videoconvert ! x264enc tune=zerolatency key-int-max=45 ! h264parse ! \
 *     kvssink stream-name=cam1 storage-size=512 endpoint=http://127.0.0.1:4567
 * ]|
 *
 * Bus messages (element messages; each field listed with its type):
 *
 * | message | fields |
 * |---|---|
 * | kvssink-stream-ready | stream-name (string), stream-arn (string) |
 * | kvssink-fragment-ack | event-type (string: BUFFERING, RECEIVED, PERSISTED, ERROR), fragment-number (string), timecode (guint64, the fragment's cluster timecode), latency-ms (guint64: fragment end to this ack, PERSISTED only), error-id (guint, ERROR only) |
 * | kvssink-error | message (string), service-code (string), http-status (gint), error-id (guint), retryable (gboolean), fatal (gboolean: an ERROR message follows), fragment-timecode (guint64, when known) |
 * | kvssink-connection | connection-id (guint64), state (string: connecting, closed, dropped, rotating), reason (string), http-status (gint) |
 * | kvssink-dropped | fragment-timecode (guint64), frames (guint), bytes (guint64) — a fragment dropped unsent because the buffer was full |
 * | kvssink-spool-dropped | fragment-timecode (guint64), bytes (guint64) — the spool (storage-path) was full: a fragment deleted unsent |
 * | kvssink-latency-pressure | buffered-duration-ms (guint64), max-latency-ms (guint64) — the media not yet persisted went above max-latency |
 * | kvssink-stats | bytes-sent (guint64), frames-sent (guint64), fragments-persisted (guint64), fragments-received (guint64), fragments-dropped (guint64), buffered-bytes (guint64), buffered-duration-ms (guint64), bitrate-bps (gdouble), last-ack-latency-ms (guint64), connections (guint64) — once a second |
 *
 * Fatal errors are posted with GST_ELEMENT_ERROR_WITH_DETAILS; the details structure
 * `kvssink-error-details` carries http-status, service-code, error-id, retryable and, when
 * known, fragment-timecode. An https endpoint whose certificate is not trusted (or fails host
 * verification) is fatal at once, as RESOURCE/OPEN_WRITE naming the endpoint and `ca-cert`.
 */
#include "gstkvssink.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bus_messages.h"
#include "kvs/control_plane.h"
#include "kvs/credentials.h"
#include "kvs/fragmenter.h"
#include "kvs/mkv.h"
#include "kvs/nal.h"
#include "kvs/spool.h"
#include "kvs/store.h"
#include "kvs/stream.h"
#include "kvs/timestamps.h"
#include "kvs/tls.h"

GST_DEBUG_CATEGORY_STATIC(gst_kvs_sink_debug);
#define GST_CAT_DEFAULT gst_kvs_sink_debug

namespace {

enum StreamingType { STREAMING_REALTIME = 0, STREAMING_NEAR_REALTIME = 1, STREAMING_OFFLINE = 2 };

constexpr const char* DEFAULT_STREAM_NAME = "DEFAULT_STREAM";
constexpr const char* DEFAULT_USER_AGENT = "AWS-SDK-KVS-CPP-CLIENT/3.6.0";
constexpr guint DEFAULT_RETENTION_PERIOD_HOURS = 2;
constexpr StreamingType DEFAULT_STREAMING_TYPE = STREAMING_REALTIME;
constexpr const char* DEFAULT_CONTENT_TYPE = "video/h264";
constexpr guint DEFAULT_MAX_LATENCY_SECONDS = 60;
constexpr guint DEFAULT_FRAGMENT_DURATION_MS = 2000;
constexpr guint DEFAULT_TIMECODE_SCALE_MS = 1;
constexpr gboolean DEFAULT_KEY_FRAME_FRAGMENTATION = TRUE;
constexpr gboolean DEFAULT_FRAME_TIMECODES = TRUE;
constexpr gboolean DEFAULT_ABSOLUTE_FRAGMENT_TIMES = TRUE;
constexpr gboolean DEFAULT_FRAGMENT_ACKS = TRUE;
constexpr gboolean DEFAULT_RESTART_ON_ERROR = TRUE;
constexpr gboolean DEFAULT_RECALCULATE_METRICS = TRUE;
constexpr guint DEFAULT_FRAMERATE = 25;
constexpr guint DEFAULT_AVG_BANDWIDTH_BPS = 4 * 1024 * 1024;
constexpr guint DEFAULT_BUFFER_DURATION_SECONDS = 120;
constexpr guint DEFAULT_REPLAY_DURATION_SECONDS = 40;
constexpr guint DEFAULT_CONNECTION_STALENESS_SECONDS = 60;
constexpr const char* DEFAULT_CODEC_ID = "V_MPEG4/ISO/AVC";
constexpr const char* DEFAULT_TRACK_NAME = "kinesis_video";
constexpr const char* DEFAULT_ACCESS_KEY = "access_key";
constexpr const char* DEFAULT_SECRET_KEY = "secret_key";
constexpr const char* DEFAULT_SESSION_TOKEN = "session_token";
constexpr const char* DEFAULT_REGION = "us-west-2";
constexpr guint DEFAULT_ROTATION_PERIOD_SECONDS = 3600;
constexpr const char* DEFAULT_LOG_CONFIG = "../kvs_log_configuration";
constexpr guint DEFAULT_STORAGE_SIZE_MB = 128;
constexpr guint DEFAULT_STORAGE_PATH_SIZE_MB = 1024;
constexpr guint DEFAULT_STOP_STREAM_TIMEOUT_SECONDS = 120;
constexpr guint DEFAULT_CONNECTION_TIMEOUT_SECONDS = 5;
constexpr guint DEFAULT_COMPLETION_TIMEOUT_SECONDS = 10;
constexpr const char* DEFAULT_CREDENTIAL_PATH = ".kvs/credential";
constexpr gboolean DEFAULT_DISABLE_BUFFER_CLIPPING = FALSE;
constexpr gboolean DEFAULT_USE_ORIGINAL_PTS = FALSE;
constexpr gboolean DEFAULT_GET_KVS_METRICS = FALSE;
constexpr gboolean DEFAULT_ALLOW_CREATE_STREAM = TRUE;

/// Media span queued on one pad before the A/V coordinator emits without waiting for the other
/// (an encoder's lookahead delays video by a second or two; a stalled pad must not stop both).
constexpr int64_t MAX_QUEUED_SPAN_NS = 5 * GST_SECOND;

enum {
  PROP_0,
  PROP_STREAM_NAME,
  PROP_USER_AGENT,
  PROP_RETENTION_PERIOD,
  PROP_STREAMING_TYPE,
  PROP_CONTENT_TYPE,
  PROP_MAX_LATENCY,
  PROP_FRAGMENT_DURATION,
  PROP_TIMECODE_SCALE,
  PROP_KEY_FRAME_FRAGMENTATION,
  PROP_FRAME_TIMECODES,
  PROP_ABSOLUTE_FRAGMENT_TIMES,
  PROP_FRAGMENT_ACKS,
  PROP_RESTART_ON_ERROR,
  PROP_RECALCULATE_METRICS,
  PROP_FRAMERATE,
  PROP_AVG_BANDWIDTH_BPS,
  PROP_BUFFER_DURATION,
  PROP_REPLAY_DURATION,
  PROP_CONNECTION_STALENESS,
  PROP_CODEC_ID,
  PROP_TRACK_NAME,
  PROP_ACCESS_KEY,
  PROP_SECRET_KEY,
  PROP_SESSION_TOKEN,
  PROP_AWS_REGION,
  PROP_ROTATION_PERIOD,
  PROP_LOG_CONFIG,
  PROP_STORAGE_SIZE,
  PROP_STOP_STREAM_TIMEOUT,
  PROP_CONNECTION_TIMEOUT,
  PROP_COMPLETION_TIMEOUT,
  PROP_CREDENTIAL_PATH,
  PROP_IOT_CERTIFICATE,
  PROP_STREAM_TAGS,
  PROP_FILE_START_TIME,
  PROP_DISABLE_BUFFER_CLIPPING,
  PROP_USE_ORIGINAL_PTS,
  PROP_GET_KVS_METRICS,
  PROP_ALLOW_CREATE_STREAM,
  PROP_ENDPOINT,
  PROP_PROFILE,
  PROP_CA_CERT,
  PROP_STORAGE_PATH,
  PROP_STORAGE_PATH_SIZE,
};

/// The properties, as set by the application.
struct Settings {
  std::string streamName = DEFAULT_STREAM_NAME;
  std::string userAgent = DEFAULT_USER_AGENT;
  guint retentionPeriod = DEFAULT_RETENTION_PERIOD_HOURS;
  StreamingType streamingType = DEFAULT_STREAMING_TYPE;
  std::string contentType = DEFAULT_CONTENT_TYPE;
  guint maxLatency = DEFAULT_MAX_LATENCY_SECONDS;
  guint fragmentDuration = DEFAULT_FRAGMENT_DURATION_MS;
  guint timecodeScale = DEFAULT_TIMECODE_SCALE_MS;
  gboolean keyFrameFragmentation = DEFAULT_KEY_FRAME_FRAGMENTATION;
  gboolean frameTimecodes = DEFAULT_FRAME_TIMECODES;
  gboolean absoluteFragmentTimes = DEFAULT_ABSOLUTE_FRAGMENT_TIMES;
  gboolean fragmentAcks = DEFAULT_FRAGMENT_ACKS;
  gboolean restartOnError = DEFAULT_RESTART_ON_ERROR;
  gboolean recalculateMetrics = DEFAULT_RECALCULATE_METRICS;
  guint framerate = DEFAULT_FRAMERATE;
  guint avgBandwidthBps = DEFAULT_AVG_BANDWIDTH_BPS;
  guint bufferDuration = DEFAULT_BUFFER_DURATION_SECONDS;
  guint replayDuration = DEFAULT_REPLAY_DURATION_SECONDS;
  guint connectionStaleness = DEFAULT_CONNECTION_STALENESS_SECONDS;
  std::string codecId = DEFAULT_CODEC_ID;
  std::string trackName = DEFAULT_TRACK_NAME;
  std::string accessKey = DEFAULT_ACCESS_KEY;
  std::string secretKey = DEFAULT_SECRET_KEY;
  std::string sessionToken = DEFAULT_SESSION_TOKEN;
  std::string awsRegion = DEFAULT_REGION;
  guint rotationPeriod = DEFAULT_ROTATION_PERIOD_SECONDS;
  std::string logConfig = DEFAULT_LOG_CONFIG;
  guint storageSize = DEFAULT_STORAGE_SIZE_MB;
  guint stopStreamTimeout = DEFAULT_STOP_STREAM_TIMEOUT_SECONDS;
  guint connectionTimeout = DEFAULT_CONNECTION_TIMEOUT_SECONDS;
  guint completionTimeout = DEFAULT_COMPLETION_TIMEOUT_SECONDS;
  std::string credentialPath = DEFAULT_CREDENTIAL_PATH;
  GstStructure* iotCertificate = nullptr;
  GstStructure* streamTags = nullptr;
  guint64 fileStartTime = 0;
  gboolean disableBufferClipping = DEFAULT_DISABLE_BUFFER_CLIPPING;
  gboolean useOriginalPts = DEFAULT_USE_ORIGINAL_PTS;
  gboolean getKvsMetrics = DEFAULT_GET_KVS_METRICS;
  gboolean allowCreateStream = DEFAULT_ALLOW_CREATE_STREAM;
  std::string endpoint;
  std::string profile;
  std::string caCert;
  std::string storagePath;
  guint storagePathSize = DEFAULT_STORAGE_PATH_SIZE_MB;
};

/// One queued frame, ready to package.
struct Frame {
  int64_t ptsNs = 0;
  bool keyframe = false;
  kvs::Chunk payload;
};

/// A request pad and what its caps told us.
struct Track {
  GstPad* pad = nullptr;
  kvs::TrackType type = kvs::TrackType::Video;
  bool hasCaps = false;
  bool eos = false;
  std::string codecId;
  std::string mediaType;
  kvs::VideoCodec codec = kvs::VideoCodec::H264;
  bool byteStream = false;
  std::vector<uint8_t> codecPrivate;
  uint32_t width = 0, height = 0;
  double rate = 0;
  uint32_t channels = 0;
  uint64_t number = 0;  // MKV track number
  std::deque<Frame> queue;
  GstSegment segment;
  kvs::DecodeOrder decodeOrder;  // frames whose timestamps go back are dropped
};

/// Runtime objects, from READY to NULL.
struct State {
  std::unique_ptr<kvs::ContentStore> store;
  std::unique_ptr<kvs::KvsStream> stream;
  std::unique_ptr<kvs::MkvWriter> writer;
  std::shared_ptr<kvs::CredentialProvider> credentials;
  std::shared_ptr<kvs::Spool> spool;  // storage-path
  std::string region;
  std::array<uint8_t, 16> segmentUid{};
  bool started = false;  // the uploader is running
  kvs::TimestampMapper timestamps;
  kvs::Fragmenter fragmenter;
  std::vector<std::pair<std::string, std::string>> pendingTags;
  std::vector<std::pair<std::string, std::string>> persistentTags;
  uint64_t framesSent = 0;
  bool eosPosted = false;
};

struct Priv {
  std::mutex mediaLock;
  // Serializes KvsStream::stop() (it joins the uploader thread, which must not happen on two
  // threads at once: EOS draining and PAUSED->READY). Never taken with another lock held.
  std::mutex stopLock;
  std::atomic<bool> stopping{false};  // PAUSED->READY has begun: an EOS wait gives up
  Settings settings;  // guarded by GstKvsSink::settings_lock
  State state;        // guarded by mediaLock
  Track video;
  Track audio;
  bool haveVideo = false;
  bool haveAudio = false;
};

}  // namespace

struct _GstKvsSink {
  GstElement parent;
  GMutex settings_lock;
  Priv* priv;
};

G_DEFINE_TYPE(GstKvsSink, gst_kvs_sink, GST_TYPE_ELEMENT)

GType gst_kvs_sink_streaming_type_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {STREAMING_REALTIME, "realtime", "realtime"},
      {STREAMING_NEAR_REALTIME, "near-realtime", "near-realtime"},
      {STREAMING_OFFLINE, "offline", "offline"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstKvsSinkStreamingType", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

static GstStaticPadTemplate video_template = GST_STATIC_PAD_TEMPLATE(
    "video_%u", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS("video/x-h264, stream-format = (string) { avc, avc3, byte-stream }, alignment = (string) au, "
                    "width = (int) [ 16, MAX ], height = (int) [ 16, MAX ]; "
                    "video/x-h265, stream-format = (string) { hvc1, hev1, byte-stream }, alignment = (string) au, "
                    "width = (int) [ 16, MAX ], height = (int) [ 16, MAX ]"));

static GstStaticPadTemplate audio_template = GST_STATIC_PAD_TEMPLATE(
    "audio_%u", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS("audio/mpeg, mpegversion = (int) { 2, 4 }, stream-format = (string) raw, "
                    "channels = (int) [ 1, MAX ], rate = (int) [ 1, MAX ]; "
                    "audio/x-alaw, channels = (int) { 1, 2 }, rate = (int) [ 8000, 192000 ]; "
                    "audio/x-mulaw, channels = (int) { 1, 2 }, rate = (int) [ 8000, 192000 ]"));

// ---------------------------------------------------------------------------------------------
// Bus messages (built in bus_messages.cpp) and logging

static void post(GstKvsSink* sink, GstMessage* message) { gst_element_post_message(GST_ELEMENT(sink), message); }

static kvs::LogSink make_log_sink(GstKvsSink* sink) {
  return [sink](kvs::LogLevel level, const std::string& msg) {
    GstDebugLevel l = GST_LEVEL_DEBUG;
    switch (level) {
      case kvs::LogLevel::Error:
        l = GST_LEVEL_ERROR;
        break;
      case kvs::LogLevel::Warning:
        l = GST_LEVEL_WARNING;
        break;
      case kvs::LogLevel::Info:
        l = GST_LEVEL_INFO;
        break;
      case kvs::LogLevel::Debug:
        l = GST_LEVEL_DEBUG;
        break;
      case kvs::LogLevel::Trace:
        l = GST_LEVEL_LOG;
        break;
    }
    GST_CAT_LEVEL_LOG(GST_CAT_DEFAULT, l, sink, "%s", msg.c_str());
  };
}

// ---------------------------------------------------------------------------------------------
// Settings helpers

static Settings settings_copy(GstKvsSink* sink) {
  g_mutex_lock(&sink->settings_lock);
  Settings s = sink->priv->settings;
  if (s.iotCertificate) s.iotCertificate = gst_structure_copy(s.iotCertificate);
  if (s.streamTags) s.streamTags = gst_structure_copy(s.streamTags);
  g_mutex_unlock(&sink->settings_lock);
  return s;
}

static void settings_free_copy(Settings& s) {
  if (s.iotCertificate) gst_structure_free(s.iotCertificate);
  if (s.streamTags) gst_structure_free(s.streamTags);
  s.iotCertificate = s.streamTags = nullptr;
}

static std::string region_of(const Settings& s) {
  const char* env = g_getenv("AWS_DEFAULT_REGION");
  if (env && *env) return env;
  return s.awsRegion;
}

static std::shared_ptr<kvs::CredentialProvider> resolve_credentials(GstKvsSink* sink, const Settings& s) {
  kvs::CredentialSettings cs;
  cs.accessKey = s.accessKey;
  cs.secretKey = s.secretKey;
  cs.sessionToken = s.sessionToken;
  cs.profile = s.profile;
  cs.credentialPath = s.credentialPath;
  std::string description;
  auto provider = kvs::resolveCredentials(cs, description);
  GST_INFO_OBJECT(sink, "credentials: %s", description.c_str());
  return std::shared_ptr<kvs::CredentialProvider>(std::move(provider));
}

// ---------------------------------------------------------------------------------------------
// Starting the upload

static std::string media_type(Priv* p) {
  std::string t;
  if (p->haveVideo) t = p->video.mediaType;
  if (p->haveAudio) t += (t.empty() ? "" : ",") + p->audio.mediaType;
  return t;
}

/// Creates the writer and starts the uploader once every pad has caps and codec data.
/// Called with mediaLock held.
static bool ensure_started(GstKvsSink* sink) {
  Priv* p = sink->priv;
  State& st = p->state;
  if (st.started) return true;
  if ((p->haveVideo && (!p->video.hasCaps || p->video.codecPrivate.empty())) || (p->haveAudio && !p->audio.hasCaps)) {
    return false;
  }
  Settings s = settings_copy(sink);
  std::vector<kvs::TrackConfig> tracks;
  uint64_t n = 1;
  if (p->haveVideo) {
    kvs::TrackConfig t;
    t.number = p->video.number = n++;
    t.uid = 1;
    t.type = kvs::TrackType::Video;
    t.name = s.trackName;
    t.codecId = p->video.codecId;
    t.codecPrivate = p->video.codecPrivate;
    t.width = p->video.width;
    t.height = p->video.height;
    tracks.push_back(std::move(t));
  }
  if (p->haveAudio) {
    kvs::TrackConfig t;
    t.number = p->audio.number = n++;
    t.uid = p->haveVideo ? 2 : 1;
    t.type = kvs::TrackType::Audio;
    t.name = "audio";
    t.codecId = p->audio.codecId;
    t.codecPrivate = p->audio.codecPrivate;
    t.samplingFrequency = p->audio.rate;
    t.channels = p->audio.channels;
    tracks.push_back(std::move(t));
  }
  uint64_t scaleNs = static_cast<uint64_t>(std::max(1u, s.timecodeScale)) * 1000000u;
  st.writer = std::make_unique<kvs::MkvWriter>(std::move(tracks), scaleNs, st.segmentUid);

  kvs::StreamSettings ss;
  ss.streamName = s.streamName;
  ss.region = st.region;
  ss.controlPlaneEndpoint = kvs::ControlPlane::resolveEndpoint(s.endpoint, st.region);
  ss.userAgent = s.userAgent + " openkvs-kvssink/0.1";
  ss.mediaType = media_type(p);
  ss.retentionHours = s.retentionPeriod;
  ss.allowCreateStream = s.allowCreateStream;
  if (s.streamTags) {
    gst_structure_foreach(
        s.streamTags,
        [](GQuark field, const GValue* value, gpointer data) -> gboolean {
          if (G_VALUE_HOLDS_STRING(value)) {
            (*static_cast<std::map<std::string, std::string>*>(data))[g_quark_to_string(field)] = g_value_get_string(value);
          }
          return TRUE;
        },
        &ss.tags);
  }
  ss.absoluteTimecodes = s.absoluteFragmentTimes || s.fileStartTime != 0;
  ss.fragmentAcks = s.fragmentAcks;
  ss.restartOnError = s.restartOnError;
  ss.replayDuration = std::chrono::seconds(std::min(s.replayDuration, s.bufferDuration));
  ss.connectTimeoutMs = static_cast<long>(s.connectionTimeout) * 1000;
  ss.completionTimeoutMs = static_cast<long>(s.completionTimeout) * 1000;
  ss.caCertPath = kvs::resolveCaCertPath(s.caCert);
  ss.connectionStaleness = std::chrono::seconds(s.connectionStaleness);
  ss.maxLatency = std::chrono::seconds(s.maxLatency);
  ss.rotationPeriod = std::chrono::minutes(40);
  if (const char* r = g_getenv("KVSSINK_CONNECTION_ROTATION_SECONDS")) {
    guint64 secs = g_ascii_strtoull(r, nullptr, 10);
    if (secs > 0) ss.rotationPeriod = std::chrono::seconds(secs);
  }
  settings_free_copy(s);

  kvs::StreamCallbacks cb;
  cb.onReady = [sink, name = ss.streamName](const std::string& arn) {
    post(sink, kvssink::stream_ready_message(GST_OBJECT(sink), name, arn));
  };
  cb.onAck = [sink](const kvs::Ack& a, std::chrono::milliseconds latency) {
    post(sink, kvssink::fragment_ack_message(GST_OBJECT(sink), a, latency));
  };
  cb.onError = [sink](const kvs::StreamError& e) {
    post(sink, kvssink::error_message(GST_OBJECT(sink), e));
    if (e.fatal) {
      GST_ERROR_OBJECT(sink, "%s", e.message.c_str());
      post(sink, kvssink::fatal_error_message(GST_OBJECT(sink), e));
    }
  };
  cb.onConnection = [sink](const kvs::ConnectionEvent& c) {
    post(sink, kvssink::connection_message(GST_OBJECT(sink), c));
  };
  cb.onStats = [sink](const kvs::UploadStats& u) {
    guint64 frames;
    {
      std::lock_guard<std::mutex> lock(sink->priv->mediaLock);
      frames = sink->priv->state.framesSent;
    }
    post(sink, kvssink::stats_message(GST_OBJECT(sink), u, frames));
  };

  cb.onLatencyPressure = [sink, maxLatency = ss.maxLatency](std::chrono::nanoseconds buffered) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(buffered);
    GST_WARNING_OBJECT(sink, "latency pressure: %" G_GINT64_FORMAT " ms of media not yet persisted (max-latency %" G_GINT64_FORMAT " ms)",
                       static_cast<gint64>(ms.count()), static_cast<gint64>(maxLatency.count()));
    post(sink, kvssink::latency_pressure_message(GST_OBJECT(sink), ms, maxLatency));
  };

  st.store->setDropCallback([sink](const kvs::FragmentInfo& f) {
    GST_WARNING_OBJECT(sink, "buffer full: dropped fragment %" G_GUINT64_FORMAT " (%u frames) unsent", f.timecode,
                       f.frames);
    post(sink, kvssink::dropped_message(GST_OBJECT(sink), f));
  });
  cb.onSpoolDropped = [sink](uint64_t timecode, uint64_t bytes) {
    GST_WARNING_OBJECT(sink, "spool full: fragment %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT " bytes) deleted unsent",
                       timecode, bytes);
    post(sink, kvssink::spool_dropped_message(GST_OBJECT(sink), timecode, bytes));
  };
  st.stream = std::make_unique<kvs::KvsStream>(std::move(ss), st.credentials, *st.store, std::move(cb), make_log_sink(sink));
  st.stream->useSpool(st.spool);
  st.stream->setStreamHeader(st.writer->streamHeader());
  st.stream->start();
  st.started = true;
  GST_INFO_OBJECT(sink, "upload started (%s)", media_type(p).c_str());
  return true;
}

// ---------------------------------------------------------------------------------------------
// Packaging (media lock held)

static void package_frame(GstKvsSink* sink, Track& track, Frame& f) {
  Priv* p = sink->priv;
  State& st = p->state;
  kvs::FragmenterSettings fs;
  fs.audioOnly = !p->haveVideo;
  g_mutex_lock(&sink->settings_lock);
  fs.keyFrameFragmentation = p->settings.keyFrameFragmentation;
  fs.fragmentDurationNs = static_cast<int64_t>(p->settings.fragmentDuration) * 1000000;
  fs.absoluteTimecodes = p->settings.absoluteFragmentTimes || p->settings.fileStartTime != 0;
  fs.timecodeScaleNs = static_cast<int64_t>(std::max(1u, p->settings.timecodeScale)) * 1000000;
  g_mutex_unlock(&sink->settings_lock);

  const kvs::Placement at = st.fragmenter.place(fs, {f.ptsNs, f.keyframe, track.type == kvs::TrackType::Video});
  switch (at.drop) {
    case kvs::FrameDrop::None:
      break;
    case kvs::FrameDrop::BeforeFirstKeyFrame:
      return;
    case kvs::FrameDrop::TooFarFromFragmentStart:
      GST_WARNING_OBJECT(sink, "frame %" G_GINT64_FORMAT " ns is too far from its fragment start; dropped", f.ptsNs);
      return;
    case kvs::FrameDrop::BeforeFragmentStart:
      GST_WARNING_OBJECT(sink, "frame timestamp before its fragment start (B-frames are not supported by Kinesis Video Streams); dropped");
      return;
  }
  if (at.newFragment) {
    std::vector<uint8_t> prefix;
    std::vector<std::pair<std::string, std::string>> tags = st.persistentTags;
    tags.insert(tags.end(), st.pendingTags.begin(), st.pendingTags.end());
    st.pendingTags.clear();
    if (!tags.empty()) prefix = kvs::MkvWriter::tags(tags);
    auto header = st.writer->clusterHeader(at.fragmentTimecode);
    prefix.insert(prefix.end(), header.begin(), header.end());
    st.store->beginFragment(at.fragmentTimecode, f.ptsNs, kvs::Chunk::adopt(std::move(prefix)));
  }
  auto blockHeader = std::make_shared<std::array<uint8_t, 16>>();
  size_t len = 0;
  kvs::MkvWriter::simpleBlockHeader(blockHeader->data(), len, track.number, at.relativeTimecode, at.keyframe,
                                    f.payload.size);
  kvs::Chunk head;
  head.data = blockHeader->data();
  head.size = len;
  head.owner = blockHeader;
  st.store->appendFrame(f.ptsNs, {std::move(head), std::move(f.payload)});
  st.framesSent++;
}

/// Emits queued frames in PTS order while every active pad has one (A/V ordering).
static void drain_queues(GstKvsSink* sink, bool force) {
  Priv* p = sink->priv;
  for (;;) {
    Track* next = nullptr;
    bool wait = false;
    for (Track* t : {&p->video, &p->audio}) {
      if ((t == &p->video && !p->haveVideo) || (t == &p->audio && !p->haveAudio)) continue;
      if (t->queue.empty()) {
        if (!t->eos && !force) wait = true;
        continue;
      }
      if (next == nullptr || t->queue.front().ptsNs < next->queue.front().ptsNs) next = t;
    }
    if (next == nullptr) return;
    if (wait) {
      auto span = [](const Track& t) { return t.queue.empty() ? 0 : t.queue.back().ptsNs - t.queue.front().ptsNs; };
      bool overfull = span(p->video) > MAX_QUEUED_SPAN_NS || span(p->audio) > MAX_QUEUED_SPAN_NS;
      if (!overfull) return;
    }
    if (!ensure_started(sink)) return;
    Frame f = std::move(next->queue.front());
    next->queue.pop_front();
    package_frame(sink, *next, f);
  }
}

// ---------------------------------------------------------------------------------------------
// Pads

static Track* track_of(GstKvsSink* sink, GstPad* pad) {
  Priv* p = sink->priv;
  if (p->haveVideo && p->video.pad == pad) return &p->video;
  if (p->haveAudio && p->audio.pad == pad) return &p->audio;
  return nullptr;
}

static bool set_caps(GstKvsSink* sink, Track& t, GstCaps* caps) {
  const GstStructure* s = gst_caps_get_structure(caps, 0);
  const gchar* name = gst_structure_get_name(s);
  const GValue* cd = gst_structure_get_value(s, "codec_data");
  std::vector<uint8_t> codecData;
  if (cd && G_VALUE_HOLDS(cd, GST_TYPE_BUFFER)) {
    GstBuffer* b = gst_value_get_buffer(cd);
    GstMapInfo m;
    if (gst_buffer_map(b, &m, GST_MAP_READ)) {
      codecData.assign(m.data, m.data + m.size);
      gst_buffer_unmap(b, &m);
    }
  }
  gint w = 0, h = 0, rate = 0, channels = 0;
  gst_structure_get_int(s, "width", &w);
  gst_structure_get_int(s, "height", &h);
  gst_structure_get_int(s, "rate", &rate);
  gst_structure_get_int(s, "channels", &channels);
  const gchar* format = gst_structure_get_string(s, "stream-format");
  if (g_str_equal(name, "video/x-h264") || g_str_equal(name, "video/x-h265")) {
    bool h265 = g_str_equal(name, "video/x-h265");
    t.codec = h265 ? kvs::VideoCodec::H265 : kvs::VideoCodec::H264;
    t.codecId = h265 ? "V_MPEGH/ISO/HEVC" : "V_MPEG4/ISO/AVC";
    t.mediaType = h265 ? "video/h265" : "video/h264";
    t.byteStream = format != nullptr && g_str_equal(format, "byte-stream");
    if (!t.byteStream && !codecData.empty()) t.codecPrivate = codecData;
    t.width = static_cast<uint32_t>(w);
    t.height = static_cast<uint32_t>(h);
    if (!t.byteStream && t.codecPrivate.empty()) {
      GST_ELEMENT_ERROR(sink, STREAM, FORMAT, ("%s caps without codec_data", name), (nullptr));
      return false;
    }
  } else if (g_str_equal(name, "audio/mpeg")) {
    t.codecId = "A_AAC";
    t.mediaType = "audio/aac";
    t.codecPrivate = codecData;
    t.rate = rate;
    t.channels = static_cast<uint32_t>(channels);
  } else if (g_str_equal(name, "audio/x-alaw") || g_str_equal(name, "audio/x-mulaw")) {
    bool alaw = g_str_equal(name, "audio/x-alaw");
    t.codecId = "A_MS/ACM";
    t.mediaType = alaw ? "audio/alaw" : "audio/mulaw";
    t.codecPrivate = kvs::pcmCodecPrivate(alaw, static_cast<uint32_t>(channels), static_cast<uint32_t>(rate));
    t.rate = rate;
    t.channels = static_cast<uint32_t>(channels);
  } else {
    return false;
  }
  if (t.hasCaps && sink->priv->state.started) {
    GST_INFO_OBJECT(sink, "caps changed after the upload started; keeping the first codec data");
    return true;
  }
  t.hasCaps = true;
  GST_INFO_OBJECT(sink, "%s track: %s%s", t.type == kvs::TrackType::Video ? "video" : "audio", t.codecId.c_str(),
                  t.byteStream ? " (byte-stream, converted)" : "");
  return true;
}

/// A mapped buffer kept alive by a chunk: unmapped and unreffed when the store lets go of it.
static kvs::Chunk chunk_of(GstBuffer* buf) {
  struct Mapped {
    GstBuffer* buffer;
    GstMapInfo map;
    ~Mapped() {
      gst_buffer_unmap(buffer, &map);
      gst_buffer_unref(buffer);
    }
  };
  auto m = std::make_shared<Mapped>();
  m->buffer = buf;
  if (!gst_buffer_map(buf, &m->map, GST_MAP_READ)) {
    gst_buffer_unref(buf);
    m->buffer = gst_buffer_new();
    gst_buffer_map(m->buffer, &m->map, GST_MAP_READ);
  }
  kvs::Chunk c;
  c.data = m->map.data;
  c.size = m->map.size;
  c.owner = m;
  return c;
}

/// Offline mode waits, instead of dropping, while the buffer is over its high watermark (90 %
/// of storage-size) until PERSISTED acks free space; PAUSED->READY ends the wait. Besides the
/// EOS drain (finish_stream), the only place the streaming thread waits.
static void wait_for_space(GstKvsSink* sink) {
  Priv* p = sink->priv;
  g_mutex_lock(&sink->settings_lock);
  const bool offline = p->settings.streamingType == STREAMING_OFFLINE;
  const size_t highWatermark = static_cast<size_t>(p->settings.storageSize) * 1024 * 1024 / 10 * 9;
  g_mutex_unlock(&sink->settings_lock);
  if (!offline) return;
  kvs::ContentStore* store;
  kvs::KvsStream* stream;
  {
    std::lock_guard<std::mutex> lock(p->mediaLock);
    store = p->state.store.get();
    stream = p->state.stream.get();
  }
  if (store == nullptr) return;
  bool waited = false;
  while (!p->stopping && !(stream && stream->failed()) &&
         !store->waitBelow(highWatermark, std::chrono::steady_clock::now() + std::chrono::milliseconds(100))) {
    if (!waited) GST_DEBUG_OBJECT(sink, "offline: buffer over its high watermark, waiting for PERSISTED acks");
    waited = true;
  }
}

static GstFlowReturn gst_kvs_sink_chain(GstPad* pad, GstObject* parent, GstBuffer* buf) {
  GstKvsSink* sink = GST_KVS_SINK(parent);
  Priv* p = sink->priv;
  if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_CORRUPTED) || GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DECODE_ONLY)) {
    gst_buffer_unref(buf);
    return GST_FLOW_OK;
  }
  wait_for_space(sink);
  std::lock_guard<std::mutex> lock(p->mediaLock);
  State& st = p->state;
  if (!st.store) {
    gst_buffer_unref(buf);
    return GST_FLOW_FLUSHING;
  }
  if (st.stream && st.stream->failed()) {
    gst_buffer_unref(buf);
    return GST_FLOW_ERROR;
  }
  Track* t = track_of(sink, pad);
  if (t == nullptr || !t->hasCaps) {
    gst_buffer_unref(buf);
    GST_ELEMENT_ERROR(sink, CORE, NEGOTIATION, ("buffer before caps on %s", GST_PAD_NAME(pad)), (nullptr));
    return GST_FLOW_NOT_NEGOTIATED;
  }

  kvs::TimestampSettings ts;
  g_mutex_lock(&sink->settings_lock);
  ts.frameTimecodes = p->settings.frameTimecodes;
  ts.useOriginalPts = p->settings.useOriginalPts;
  ts.offline = p->settings.streamingType == STREAMING_OFFLINE;
  ts.fileStartTimeSeconds = p->settings.fileStartTime;
  g_mutex_unlock(&sink->settings_lock);

  // Timestamps (kvs/timestamps.h): the running time of the PTS (or of the DTS when there is no
  // PTS; with use-original-pts, the timestamp as is) becomes epoch-based.
  const GstClockTime dts = GST_BUFFER_DTS(buf);
  GstClockTime pts = GST_BUFFER_PTS(buf);
  if (!GST_CLOCK_TIME_IS_VALID(pts)) pts = dts;
  if (GST_CLOCK_TIME_IS_VALID(pts) && !ts.useOriginalPts) {
    pts = gst_segment_to_running_time(&t->segment, GST_FORMAT_TIME, pts);
  }
  const int64_t ptsNs =
      st.timestamps.frameTime(ts, GST_CLOCK_TIME_IS_VALID(pts) ? std::optional<uint64_t>(pts) : std::nullopt,
                              static_cast<int64_t>(dts), g_get_real_time() * 1000);

  Frame f;
  f.ptsNs = ptsNs;
  f.keyframe = !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);

  // Decode order (kvs::DecodeOrder): frames whose decode time goes back are dropped.
  int64_t decodeNs = ptsNs;
  if (ts.frameTimecodes && !ts.useOriginalPts && GST_CLOCK_TIME_IS_VALID(pts) && GST_CLOCK_TIME_IS_VALID(dts)) {
    const GstClockTime dtsRunning = gst_segment_to_running_time(&t->segment, GST_FORMAT_TIME, dts);
    if (GST_CLOCK_TIME_IS_VALID(dtsRunning)) decodeNs = ptsNs - (static_cast<int64_t>(pts) - static_cast<int64_t>(dtsRunning));
  }
  const bool isVideo = t->type == kvs::TrackType::Video;
  const int64_t lastNs = t->decodeOrder.lastNs();
  switch (t->decodeOrder.check(decodeNs, !isVideo || f.keyframe)) {
    case kvs::DecodeOrder::Verdict::Keep:
      break;
    case kvs::DecodeOrder::Verdict::WentBack:
      GST_ELEMENT_WARNING(sink, STREAM, FORMAT,
                          ("timestamps on %s went back by %" G_GINT64_FORMAT " ms; frames are dropped until they pass "
                           "the last one sent%s",
                           GST_PAD_NAME(pad), (lastNs - decodeNs) / 1000000, isVideo ? " and a key frame comes" : ""),
                          (nullptr));
      [[fallthrough]];
    case kvs::DecodeOrder::Verdict::Drop:
      gst_buffer_unref(buf);
      return GST_FLOW_OK;
  }
  if (t->type == kvs::TrackType::Video && t->byteStream) {
    GstMapInfo m;
    if (!gst_buffer_map(buf, &m, GST_MAP_READ)) {
      gst_buffer_unref(buf);
      return GST_FLOW_ERROR;
    }
    if (t->codecPrivate.empty() && f.keyframe) {
      t->codecPrivate = kvs::codecPrivateFromAnnexB(t->codec, m.data, m.size);
      if (!t->codecPrivate.empty()) GST_INFO_OBJECT(sink, "codec private data taken from the first key frame");
    }
    f.payload = kvs::Chunk::adopt(kvs::annexBToLengthPrefixed(m.data, m.size));
    gst_buffer_unmap(buf, &m);
    gst_buffer_unref(buf);
    if (t->codecPrivate.empty()) return GST_FLOW_OK;  // nothing can be sent before the parameter sets
  } else {
    f.payload = chunk_of(buf);
  }
  t->queue.push_back(std::move(f));
  drain_queues(sink, false);
  return GST_FLOW_OK;
}

/// EOS on every pad: close the last fragment with an end-of-fragment tag, wait for it to be
/// persisted (bounded by stop-stream-timeout), then post EOS.
static void finish_stream(GstKvsSink* sink) {
  Priv* p = sink->priv;
  kvs::KvsStream* stream = nullptr;
  kvs::ContentStore* store = nullptr;
  guint timeout;
  {
    std::lock_guard<std::mutex> lock(p->mediaLock);
    drain_queues(sink, true);
    State& st = p->state;
    if (st.fragmenter.endFragment() && st.store) {
      st.store->closeFragment(kvs::Chunk::adopt(kvs::MkvWriter::endOfFragmentTags()));
    }
    stream = st.stream.get();
    store = st.store.get();
    g_mutex_lock(&sink->settings_lock);
    timeout = p->settings.stopStreamTimeout;
    g_mutex_unlock(&sink->settings_lock);
  }
  if (stream != nullptr) {
    GST_INFO_OBJECT(sink, "EOS: waiting up to %u s for the last fragment to be persisted", timeout);
    // Wait on the store, which PAUSED->READY interrupts (stopping + wake), not inside
    // KvsStream::stop(drain), which nothing can interrupt and which PAUSED->READY would
    // otherwise call a second time, concurrently. 100 ms slices cover a wake-up that comes just
    // before the wait starts. The uploader keeps going meanwhile (start-up included).
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::seconds(timeout);
    bool persisted = false;
    while (!persisted && !p->stopping && !stream->failed() && Clock::now() < deadline) {
      persisted = store->waitAllPersisted(std::min(deadline, Clock::now() + std::chrono::milliseconds(100)));
    }
    {
      // Everything persisted: end the connections cleanly; otherwise give up at once.
      std::lock_guard<std::mutex> stopLock(p->stopLock);
      persisted = stream->stop(true, persisted ? deadline : Clock::now());
    }
    if (!persisted) GST_WARNING_OBJECT(sink, "EOS: not every fragment was persisted");
  }
  std::lock_guard<std::mutex> lock(p->mediaLock);
  if (!p->state.eosPosted) {
    p->state.eosPosted = true;
    post(sink, gst_message_new_eos(GST_OBJECT(sink)));
  }
}

static gboolean gst_kvs_sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  GstKvsSink* sink = GST_KVS_SINK(parent);
  Priv* p = sink->priv;
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      GstCaps* caps;
      gst_event_parse_caps(event, &caps);
      std::lock_guard<std::mutex> lock(p->mediaLock);
      Track* t = track_of(sink, pad);
      bool ok = t != nullptr && set_caps(sink, *t, caps);
      gst_event_unref(event);
      return ok;
    }
    case GST_EVENT_EOS: {
      bool all;
      {
        std::lock_guard<std::mutex> lock(p->mediaLock);
        Track* t = track_of(sink, pad);
        if (t) t->eos = true;
        all = (!p->haveVideo || p->video.eos) && (!p->haveAudio || p->audio.eos);
      }
      gst_event_unref(event);
      if (all) finish_stream(sink);
      return TRUE;
    }
    case GST_EVENT_CUSTOM_DOWNSTREAM: {
      const GstStructure* s = gst_event_get_structure(event);
      if (s && gst_structure_has_name(s, "kvs-add-metadata")) {
        const gchar* name = gst_structure_get_string(s, "name");
        const gchar* value = gst_structure_get_string(s, "value");
        gboolean persist = FALSE;
        gst_structure_get_boolean(s, "persist", &persist);
        if (name && value) {
          std::lock_guard<std::mutex> lock(p->mediaLock);
          auto& list = persist ? p->state.persistentTags : p->state.pendingTags;
          list.erase(std::remove_if(list.begin(), list.end(), [&](auto& kv) { return kv.first == name; }), list.end());
          if (*value != '\0' || !persist) list.emplace_back(name, value);
        }
        gst_event_unref(event);
        return TRUE;
      }
      break;
    }
    case GST_EVENT_SEGMENT: {
      std::lock_guard<std::mutex> lock(p->mediaLock);
      if (Track* t = track_of(sink, pad)) gst_event_copy_segment(event, &t->segment);
      gst_event_unref(event);
      return TRUE;
    }
    case GST_EVENT_FLUSH_STOP:
    case GST_EVENT_STREAM_START:
      gst_event_unref(event);
      return TRUE;
    default:
      break;
  }
  return gst_pad_event_default(pad, parent, event);
}

static GstPad* gst_kvs_sink_request_new_pad(GstElement* element, GstPadTemplate* templ, const gchar* req_name,
                                            const GstCaps* caps) {
  (void)req_name;
  (void)caps;
  GstKvsSink* sink = GST_KVS_SINK(element);
  Priv* p = sink->priv;
  std::lock_guard<std::mutex> lock(p->mediaLock);
  bool video = g_str_has_prefix(GST_PAD_TEMPLATE_NAME_TEMPLATE(templ), "video");
  if ((video && p->haveVideo) || (!video && p->haveAudio)) {
    GST_WARNING_OBJECT(sink, "kvssink takes at most one %s pad", video ? "video" : "audio");
    return nullptr;
  }
  if (p->state.started) {
    GST_WARNING_OBJECT(sink, "cannot add a pad once the upload has started");
    return nullptr;
  }
  GstPad* pad = gst_pad_new_from_template(templ, video ? "video_0" : "audio_0");
  gst_pad_set_chain_function(pad, GST_DEBUG_FUNCPTR(gst_kvs_sink_chain));
  gst_pad_set_event_function(pad, GST_DEBUG_FUNCPTR(gst_kvs_sink_event));
  GST_PAD_SET_PROXY_ALLOCATION(pad);
  Track& t = video ? p->video : p->audio;
  t = Track{};
  t.pad = pad;
  t.type = video ? kvs::TrackType::Video : kvs::TrackType::Audio;
  gst_segment_init(&t.segment, GST_FORMAT_TIME);
  (video ? p->haveVideo : p->haveAudio) = true;
  gst_element_add_pad(element, pad);
  return pad;
}

static void gst_kvs_sink_release_pad(GstElement* element, GstPad* pad) {
  GstKvsSink* sink = GST_KVS_SINK(element);
  Priv* p = sink->priv;
  {
    std::lock_guard<std::mutex> lock(p->mediaLock);
    if (p->haveVideo && p->video.pad == pad) {
      p->haveVideo = false;
      p->video = Track{};
    } else if (p->haveAudio && p->audio.pad == pad) {
      p->haveAudio = false;
      p->audio = Track{};
    }
  }
  gst_element_remove_pad(element, pad);
}

// ---------------------------------------------------------------------------------------------
// State changes

/// A stream's spool directory: `storage-path`/<stream name, anything but [A-Za-z0-9._-] as _>.
static std::string spool_dir(const std::string& storagePath, const std::string& streamName) {
  std::string name = streamName;
  for (char& c : name) {
    if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-') c = '_';
  }
  if (name.empty() || name == "." || name == "..") name = "_";
  return storagePath + G_DIR_SEPARATOR_S + name;
}

static bool prepare(GstKvsSink* sink) {
  Priv* p = sink->priv;
  Settings s = settings_copy(sink);
  bool ok = true;
  std::shared_ptr<kvs::CredentialProvider> creds;
  if (s.iotCertificate) {
    GST_ELEMENT_ERROR(sink, LIBRARY, SETTINGS, ("iot-certificate credentials are not supported by this kvssink yet"),
                      ("use access-key/secret-key, the AWS_* environment variables, a profile or credential-path"));
    ok = false;
  }
  if (ok) {
    try {
      creds = resolve_credentials(sink, s);
    } catch (const std::exception& e) {
      GST_ELEMENT_ERROR(sink, LIBRARY, INIT, ("%s", e.what()), (nullptr));
      ok = false;
    }
  }
  std::shared_ptr<kvs::Spool> spool;
  if (ok && !s.storagePath.empty()) {
    if (!s.fragmentAcks || !(s.absoluteFragmentTimes || s.fileStartTime != 0)) {
      GST_ELEMENT_ERROR(sink, RESOURCE, SETTINGS, ("storage-path needs fragment-acks and absolute-fragment-times"),
                        ("without acknowledgements nothing could leave the spool; relative timecodes cannot be sent "
                         "again on another connection"));
      ok = false;
    } else {
      try {
        spool = std::make_shared<kvs::Spool>(spool_dir(s.storagePath, s.streamName),
                                             static_cast<uint64_t>(s.storagePathSize) << 20, make_log_sink(sink));
      } catch (const std::exception& e) {
        GST_ELEMENT_ERROR(sink, RESOURCE, OPEN_WRITE, ("%s", e.what()), (nullptr));
        ok = false;
      }
    }
  }
  if (ok) {
    std::lock_guard<std::mutex> lock(p->mediaLock);
    State& st = p->state;
    st = State{};
    st.credentials = creds;
    st.spool = std::move(spool);
    st.region = region_of(s);
    if (st.region.empty()) st.region = kvs::profileRegion(s.profile).value_or(DEFAULT_REGION);
    std::random_device rd;
    for (auto& b : st.segmentUid) b = static_cast<uint8_t>(rd());
    size_t bytes = static_cast<size_t>(s.storageSize) * 1024 * 1024;
    st.store = std::make_unique<kvs::ContentStore>(bytes, std::chrono::seconds(std::max(1u, s.bufferDuration)));
  }
  settings_free_copy(s);
  return ok;
}

static void teardown(GstKvsSink* sink) {
  Priv* p = sink->priv;
  std::unique_ptr<kvs::KvsStream> stream;
  {
    std::lock_guard<std::mutex> lock(p->mediaLock);
    stream = std::move(p->state.stream);
  }
  if (stream) {
    std::lock_guard<std::mutex> stopLock(p->stopLock);
    stream->stop(false, std::chrono::steady_clock::now());  // never hangs: aborts at once
  }
  std::lock_guard<std::mutex> lock(p->mediaLock);
  p->state = State{};
  for (Track* t : {&p->video, &p->audio}) {
    t->queue.clear();
    t->eos = false;
    t->hasCaps = false;
    t->codecPrivate.clear();
    t->decodeOrder = kvs::DecodeOrder{};
  }
}

static GstStateChangeReturn gst_kvs_sink_change_state(GstElement* element, GstStateChange transition) {
  GstKvsSink* sink = GST_KVS_SINK(element);
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!prepare(sink)) return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      sink->priv->stopping = false;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      // Interrupt a pending EOS wait before the pads are deactivated (stop() below wakes it).
      // No store wake-up of our own: it would send a start-up in backoff into a new attempt,
      // whose stop() wake-up could then be missed until the next backoff ends.
      sink->priv->stopping = true;
      break;
    default:
      break;
  }
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    kvs::KvsStream* stream;
    {
      std::lock_guard<std::mutex> lock(sink->priv->mediaLock);
      stream = sink->priv->state.stream.get();
    }
    if (stream) {
      std::lock_guard<std::mutex> stopLock(sink->priv->stopLock);  // after an EOS drain gave up
      stream->stop(false, std::chrono::steady_clock::now());
    }
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_kvs_sink_parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) return ret;
  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      teardown(sink);
      prepare(sink);
      break;
    case GST_STATE_CHANGE_READY_TO_NULL:
      teardown(sink);
      break;
    default:
      break;
  }
  return ret;
}

// ---------------------------------------------------------------------------------------------
// Properties

static void set_string(std::string& field, const GValue* value, const char* fallback) {
  const gchar* v = g_value_get_string(value);
  field = v ? v : fallback;
}

static void gst_kvs_sink_set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  GstKvsSink* sink = GST_KVS_SINK(object);
  bool credentialsChanged = false;
  g_mutex_lock(&sink->settings_lock);
  Settings& s = sink->priv->settings;
  switch (prop_id) {
    case PROP_STREAM_NAME: set_string(s.streamName, value, DEFAULT_STREAM_NAME); break;
    case PROP_USER_AGENT: set_string(s.userAgent, value, DEFAULT_USER_AGENT); break;
    case PROP_RETENTION_PERIOD: s.retentionPeriod = g_value_get_uint(value); break;
    case PROP_STREAMING_TYPE: s.streamingType = static_cast<StreamingType>(g_value_get_enum(value)); break;
    case PROP_CONTENT_TYPE: set_string(s.contentType, value, DEFAULT_CONTENT_TYPE); break;
    case PROP_MAX_LATENCY: s.maxLatency = g_value_get_uint(value); break;
    case PROP_FRAGMENT_DURATION: s.fragmentDuration = g_value_get_uint(value); break;
    case PROP_TIMECODE_SCALE: s.timecodeScale = g_value_get_uint(value); break;
    case PROP_KEY_FRAME_FRAGMENTATION: s.keyFrameFragmentation = g_value_get_boolean(value); break;
    case PROP_FRAME_TIMECODES: s.frameTimecodes = g_value_get_boolean(value); break;
    case PROP_ABSOLUTE_FRAGMENT_TIMES: s.absoluteFragmentTimes = g_value_get_boolean(value); break;
    case PROP_FRAGMENT_ACKS: s.fragmentAcks = g_value_get_boolean(value); break;
    case PROP_RESTART_ON_ERROR: s.restartOnError = g_value_get_boolean(value); break;
    case PROP_RECALCULATE_METRICS: s.recalculateMetrics = g_value_get_boolean(value); break;
    case PROP_FRAMERATE: s.framerate = g_value_get_uint(value); break;
    case PROP_AVG_BANDWIDTH_BPS: s.avgBandwidthBps = g_value_get_uint(value); break;
    case PROP_BUFFER_DURATION: s.bufferDuration = g_value_get_uint(value); break;
    case PROP_REPLAY_DURATION: s.replayDuration = g_value_get_uint(value); break;
    case PROP_CONNECTION_STALENESS: s.connectionStaleness = g_value_get_uint(value); break;
    case PROP_CODEC_ID: set_string(s.codecId, value, DEFAULT_CODEC_ID); break;
    case PROP_TRACK_NAME: set_string(s.trackName, value, DEFAULT_TRACK_NAME); break;
    case PROP_ACCESS_KEY: set_string(s.accessKey, value, DEFAULT_ACCESS_KEY); credentialsChanged = true; break;
    case PROP_SECRET_KEY: set_string(s.secretKey, value, DEFAULT_SECRET_KEY); credentialsChanged = true; break;
    case PROP_SESSION_TOKEN: set_string(s.sessionToken, value, DEFAULT_SESSION_TOKEN); credentialsChanged = true; break;
    case PROP_AWS_REGION: set_string(s.awsRegion, value, DEFAULT_REGION); break;
    case PROP_ROTATION_PERIOD: s.rotationPeriod = g_value_get_uint(value); break;
    case PROP_LOG_CONFIG: set_string(s.logConfig, value, DEFAULT_LOG_CONFIG); break;
    case PROP_STORAGE_SIZE: s.storageSize = g_value_get_uint(value); break;
    case PROP_STOP_STREAM_TIMEOUT: s.stopStreamTimeout = g_value_get_uint(value); break;
    case PROP_CONNECTION_TIMEOUT: s.connectionTimeout = g_value_get_uint(value); break;
    case PROP_COMPLETION_TIMEOUT: s.completionTimeout = g_value_get_uint(value); break;
    case PROP_CREDENTIAL_PATH: set_string(s.credentialPath, value, DEFAULT_CREDENTIAL_PATH); credentialsChanged = true; break;
    case PROP_IOT_CERTIFICATE: {
      if (s.iotCertificate) gst_structure_free(s.iotCertificate);
      const GstStructure* st = gst_value_get_structure(value);
      s.iotCertificate = st ? gst_structure_copy(st) : nullptr;
      break;
    }
    case PROP_STREAM_TAGS: {
      if (s.streamTags) gst_structure_free(s.streamTags);
      const GstStructure* st = gst_value_get_structure(value);
      s.streamTags = st ? gst_structure_copy(st) : nullptr;
      break;
    }
    case PROP_FILE_START_TIME: s.fileStartTime = g_value_get_uint64(value); break;
    case PROP_DISABLE_BUFFER_CLIPPING: s.disableBufferClipping = g_value_get_boolean(value); break;
    case PROP_USE_ORIGINAL_PTS: s.useOriginalPts = g_value_get_boolean(value); break;
    case PROP_GET_KVS_METRICS: s.getKvsMetrics = g_value_get_boolean(value); break;
    case PROP_ALLOW_CREATE_STREAM: s.allowCreateStream = g_value_get_boolean(value); break;
    case PROP_ENDPOINT: set_string(s.endpoint, value, ""); break;
    case PROP_PROFILE: set_string(s.profile, value, ""); credentialsChanged = true; break;
    case PROP_CA_CERT: set_string(s.caCert, value, ""); break;
    case PROP_STORAGE_PATH: set_string(s.storagePath, value, ""); break;
    case PROP_STORAGE_PATH_SIZE: s.storagePathSize = g_value_get_uint(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  g_mutex_unlock(&sink->settings_lock);

  if (credentialsChanged) {
    // Used for the next signature of a running upload, without interrupting it.
    Priv* p = sink->priv;
    std::lock_guard<std::mutex> lock(p->mediaLock);
    if (p->state.stream) {
      Settings copy = settings_copy(sink);
      try {
        auto creds = resolve_credentials(sink, copy);
        p->state.credentials = creds;
        p->state.stream->setCredentials(creds);
      } catch (const std::exception& e) {
        GST_WARNING_OBJECT(sink, "new credentials not usable yet: %s", e.what());
      }
      settings_free_copy(copy);
    }
  }
}

static void gst_kvs_sink_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstKvsSink* sink = GST_KVS_SINK(object);
  g_mutex_lock(&sink->settings_lock);
  const Settings& s = sink->priv->settings;
  switch (prop_id) {
    case PROP_STREAM_NAME: g_value_set_string(value, s.streamName.c_str()); break;
    case PROP_USER_AGENT: g_value_set_string(value, s.userAgent.c_str()); break;
    case PROP_RETENTION_PERIOD: g_value_set_uint(value, s.retentionPeriod); break;
    case PROP_STREAMING_TYPE: g_value_set_enum(value, s.streamingType); break;
    case PROP_CONTENT_TYPE: g_value_set_string(value, s.contentType.c_str()); break;
    case PROP_MAX_LATENCY: g_value_set_uint(value, s.maxLatency); break;
    case PROP_FRAGMENT_DURATION: g_value_set_uint(value, s.fragmentDuration); break;
    case PROP_TIMECODE_SCALE: g_value_set_uint(value, s.timecodeScale); break;
    case PROP_KEY_FRAME_FRAGMENTATION: g_value_set_boolean(value, s.keyFrameFragmentation); break;
    case PROP_FRAME_TIMECODES: g_value_set_boolean(value, s.frameTimecodes); break;
    case PROP_ABSOLUTE_FRAGMENT_TIMES: g_value_set_boolean(value, s.absoluteFragmentTimes); break;
    case PROP_FRAGMENT_ACKS: g_value_set_boolean(value, s.fragmentAcks); break;
    case PROP_RESTART_ON_ERROR: g_value_set_boolean(value, s.restartOnError); break;
    case PROP_RECALCULATE_METRICS: g_value_set_boolean(value, s.recalculateMetrics); break;
    case PROP_FRAMERATE: g_value_set_uint(value, s.framerate); break;
    case PROP_AVG_BANDWIDTH_BPS: g_value_set_uint(value, s.avgBandwidthBps); break;
    case PROP_BUFFER_DURATION: g_value_set_uint(value, s.bufferDuration); break;
    case PROP_REPLAY_DURATION: g_value_set_uint(value, s.replayDuration); break;
    case PROP_CONNECTION_STALENESS: g_value_set_uint(value, s.connectionStaleness); break;
    case PROP_CODEC_ID: g_value_set_string(value, s.codecId.c_str()); break;
    case PROP_TRACK_NAME: g_value_set_string(value, s.trackName.c_str()); break;
    case PROP_AWS_REGION: g_value_set_string(value, s.awsRegion.c_str()); break;
    case PROP_ROTATION_PERIOD: g_value_set_uint(value, s.rotationPeriod); break;
    case PROP_LOG_CONFIG: g_value_set_string(value, s.logConfig.c_str()); break;
    case PROP_STORAGE_SIZE: g_value_set_uint(value, s.storageSize); break;
    case PROP_STOP_STREAM_TIMEOUT: g_value_set_uint(value, s.stopStreamTimeout); break;
    case PROP_CONNECTION_TIMEOUT: g_value_set_uint(value, s.connectionTimeout); break;
    case PROP_COMPLETION_TIMEOUT: g_value_set_uint(value, s.completionTimeout); break;
    case PROP_CREDENTIAL_PATH: g_value_set_string(value, s.credentialPath.c_str()); break;
    case PROP_IOT_CERTIFICATE: gst_value_set_structure(value, s.iotCertificate); break;
    case PROP_STREAM_TAGS: gst_value_set_structure(value, s.streamTags); break;
    case PROP_FILE_START_TIME: g_value_set_uint64(value, s.fileStartTime); break;
    case PROP_DISABLE_BUFFER_CLIPPING: g_value_set_boolean(value, s.disableBufferClipping); break;
    case PROP_USE_ORIGINAL_PTS: g_value_set_boolean(value, s.useOriginalPts); break;
    case PROP_GET_KVS_METRICS: g_value_set_boolean(value, s.getKvsMetrics); break;
    case PROP_ALLOW_CREATE_STREAM: g_value_set_boolean(value, s.allowCreateStream); break;
    case PROP_ENDPOINT: g_value_set_string(value, s.endpoint.empty() ? nullptr : s.endpoint.c_str()); break;
    case PROP_PROFILE: g_value_set_string(value, s.profile.empty() ? nullptr : s.profile.c_str()); break;
    case PROP_CA_CERT: g_value_set_string(value, s.caCert.empty() ? nullptr : s.caCert.c_str()); break;
    case PROP_STORAGE_PATH: g_value_set_string(value, s.storagePath.empty() ? nullptr : s.storagePath.c_str()); break;
    case PROP_STORAGE_PATH_SIZE: g_value_set_uint(value, s.storagePathSize); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  g_mutex_unlock(&sink->settings_lock);
}

static void gst_kvs_sink_finalize(GObject* object) {
  GstKvsSink* sink = GST_KVS_SINK(object);
  teardown(sink);
  settings_free_copy(sink->priv->settings);
  delete sink->priv;
  g_mutex_clear(&sink->settings_lock);
  G_OBJECT_CLASS(gst_kvs_sink_parent_class)->finalize(object);
}

static void gst_kvs_sink_init(GstKvsSink* sink) {
  g_mutex_init(&sink->settings_lock);
  sink->priv = new Priv();
  sink->priv->settings.fileStartTime = static_cast<guint64>(g_get_real_time() / G_USEC_PER_SEC);
  GST_OBJECT_FLAG_SET(sink, GST_ELEMENT_FLAG_SINK);
}

#define RW_FLAGS (static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY))
#define RW_PLAYING_FLAGS (static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING))
#define SECRET_FLAGS (static_cast<GParamFlags>(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING))

static void gst_kvs_sink_class_init(GstKvsSinkClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->set_property = gst_kvs_sink_set_property;
  gobject_class->get_property = gst_kvs_sink_get_property;
  gobject_class->finalize = gst_kvs_sink_finalize;

  auto str = [&](guint id, const char* name, const char* nick, const char* blurb, const char* def, GParamFlags flags) {
    g_object_class_install_property(gobject_class, id, g_param_spec_string(name, nick, blurb, def, flags));
  };
  auto uintProp = [&](guint id, const char* name, const char* nick, const char* blurb, guint min, guint max, guint def,
                  GParamFlags flags) {
    g_object_class_install_property(gobject_class, id, g_param_spec_uint(name, nick, blurb, min, max, def, flags));
  };
  auto boolean = [&](guint id, const char* name, const char* nick, const char* blurb, gboolean def, GParamFlags flags) {
    g_object_class_install_property(gobject_class, id, g_param_spec_boolean(name, nick, blurb, def, flags));
  };

  str(PROP_STREAM_NAME, "stream-name", "Stream name", "Name of the Kinesis Video stream to upload to.",
      DEFAULT_STREAM_NAME, RW_FLAGS);
  str(PROP_USER_AGENT, "user-agent", "User agent", "Name part of the User-Agent header (at most 32 characters).",
      DEFAULT_USER_AGENT, RW_FLAGS);
  uintProp(PROP_RETENTION_PERIOD, "retention-period", "Retention period",
       "Data retention in hours used when the stream is created; above 0, fragments are trimmed from the buffer on "
       "PERSISTED acknowledgements.",
       0, 87600, DEFAULT_RETENTION_PERIOD_HOURS, RW_FLAGS);
  g_object_class_install_property(
      gobject_class, PROP_STREAMING_TYPE,
      g_param_spec_enum("streaming-type", "Streaming type",
                        "Streaming mode: realtime drops the oldest fragments when the buffer is full; offline stamps "
                        "frames from file-start-time.",
                        GST_TYPE_KVS_SINK_STREAMING_TYPE, DEFAULT_STREAMING_TYPE, RW_FLAGS));
  str(PROP_CONTENT_TYPE, "content-type", "Content type",
      "Media type of the stream (replaced by the one derived from the caps).", DEFAULT_CONTENT_TYPE, RW_FLAGS);
  uintProp(PROP_MAX_LATENCY, "max-latency", "Max latency",
       "Seconds of media not yet persisted above which kvssink-latency-pressure is posted (0 disables).", 0,
       G_MAXUINT, DEFAULT_MAX_LATENCY_SECONDS, RW_FLAGS);
  uintProp(PROP_FRAGMENT_DURATION, "fragment-duration", "Fragment duration",
       "Fragment duration in milliseconds when key-frame-fragmentation is false (and for audio-only streams).", 0,
       G_MAXUINT, DEFAULT_FRAGMENT_DURATION_MS, RW_FLAGS);
  uintProp(PROP_TIMECODE_SCALE, "timecode-scale", "Timecode scale", "MKV timecode scale in milliseconds (0 means 1).", 0,
       G_MAXUINT, DEFAULT_TIMECODE_SCALE_MS, RW_FLAGS);
  boolean(PROP_KEY_FRAME_FRAGMENTATION, "key-frame-fragmentation", "Key frame fragmentation",
          "Start a new fragment on every key frame.", DEFAULT_KEY_FRAME_FRAGMENTATION, RW_FLAGS);
  boolean(PROP_FRAME_TIMECODES, "frame-timecodes", "Frame timecodes",
          "Use the buffers' timestamps (false: stamp frames with the wall clock).", DEFAULT_FRAME_TIMECODES, RW_FLAGS);
  boolean(PROP_ABSOLUTE_FRAGMENT_TIMES, "absolute-fragment-times", "Absolute fragment times",
          "Send absolute (epoch) cluster timecodes; false sends them relative to the session start.",
          DEFAULT_ABSOLUTE_FRAGMENT_TIMES, RW_FLAGS);
  boolean(PROP_FRAGMENT_ACKS, "fragment-acks", "Fragment acks", "Ask the service for fragment acknowledgements.",
          DEFAULT_FRAGMENT_ACKS, RW_FLAGS);
  boolean(PROP_RESTART_ON_ERROR, "restart-on-error", "Restart on error",
          "Reconnect and resend after errors instead of failing the pipeline.", DEFAULT_RESTART_ON_ERROR, RW_FLAGS);
  boolean(PROP_RECALCULATE_METRICS, "recalculate-metrics", "Recalculate metrics",
          "Recalculate stream metrics (kept for compatibility).", DEFAULT_RECALCULATE_METRICS, RW_FLAGS);
  uintProp(PROP_FRAMERATE, "framerate", "Framerate", "Expected frame rate in frames per second (buffer sizing).", 0,
       G_MAXUINT, DEFAULT_FRAMERATE, RW_FLAGS);
  uintProp(PROP_AVG_BANDWIDTH_BPS, "avg-bandwidth-bps", "Average bandwidth",
       "Expected average bandwidth in bits per second (metrics seed).", 0, G_MAXUINT, DEFAULT_AVG_BANDWIDTH_BPS,
       RW_FLAGS);
  uintProp(PROP_BUFFER_DURATION, "buffer-duration", "Buffer duration",
       "Longest span of media kept in the buffer, in seconds.", 0, G_MAXUINT, DEFAULT_BUFFER_DURATION_SECONDS, RW_FLAGS);
  uintProp(PROP_REPLAY_DURATION, "replay-duration", "Replay duration",
       "How far back, in seconds, a reconnect resends unacknowledged media.", 0, G_MAXUINT,
       DEFAULT_REPLAY_DURATION_SECONDS, RW_FLAGS);
  uintProp(PROP_CONNECTION_STALENESS, "connection-staleness", "Connection staleness",
       "Seconds without an acknowledgement, while data is being sent, after which the connection is dropped and "
       "the next one resends (0 disables).", 0,
       G_MAXUINT, DEFAULT_CONNECTION_STALENESS_SECONDS, RW_FLAGS);
  str(PROP_CODEC_ID, "codec-id", "Codec ID", "MKV codec ID of the video track (set from the caps).",
      DEFAULT_CODEC_ID, RW_FLAGS);
  str(PROP_TRACK_NAME, "track-name", "Track name", "MKV name of the video track.", DEFAULT_TRACK_NAME, RW_FLAGS);
  str(PROP_ACCESS_KEY, "access-key", "Access key",
      "AWS access key id (write-only; the default sentinel means: use the environment or a file).",
      DEFAULT_ACCESS_KEY, SECRET_FLAGS);
  str(PROP_SECRET_KEY, "secret-key", "Secret key", "AWS secret access key (write-only).", DEFAULT_SECRET_KEY,
      SECRET_FLAGS);
  str(PROP_SESSION_TOKEN, "session-token", "Session token", "AWS session token (write-only).",
      DEFAULT_SESSION_TOKEN, SECRET_FLAGS);
  str(PROP_AWS_REGION, "aws-region", "AWS region",
      "AWS region of the stream (AWS_DEFAULT_REGION, when set, takes precedence).", DEFAULT_REGION, RW_FLAGS);
  uintProp(PROP_ROTATION_PERIOD, "rotation-period", "Rotation period",
       "Credential rotation period in seconds (kept for compatibility; unused).", 0, G_MAXUINT,
       DEFAULT_ROTATION_PERIOD_SECONDS, RW_FLAGS);
  str(PROP_LOG_CONFIG, "log-config", "Log configuration",
      "Path of a log4cplus configuration (kept for compatibility; logs go to GST_DEBUG category kvssink).",
      DEFAULT_LOG_CONFIG, RW_FLAGS);
  uintProp(PROP_STORAGE_SIZE, "storage-size", "Storage size", "Size of the upload buffer in MiB.", 1, 10240,
       DEFAULT_STORAGE_SIZE_MB, RW_FLAGS);
  uintProp(PROP_STOP_STREAM_TIMEOUT, "stop-stream-timeout", "Stop stream timeout",
       "Seconds to wait at EOS for the last fragment to be persisted.", 0, G_MAXUINT,
       DEFAULT_STOP_STREAM_TIMEOUT_SECONDS, RW_FLAGS);
  uintProp(PROP_CONNECTION_TIMEOUT, "connection-timeout", "Connection timeout", "Connect timeout in seconds.", 1,
       G_MAXUINT, DEFAULT_CONNECTION_TIMEOUT_SECONDS, RW_FLAGS);
  uintProp(PROP_COMPLETION_TIMEOUT, "completion-timeout", "Completion timeout",
       "Total timeout of a control-plane call in seconds.", 1, G_MAXUINT, DEFAULT_COMPLETION_TIMEOUT_SECONDS,
       RW_FLAGS);
  str(PROP_CREDENTIAL_PATH, "credential-path", "Credential path",
      "Path of a kvssink credential file (CREDENTIALS <access-key> [<expiration>] <secret-key> [<token>]).",
      DEFAULT_CREDENTIAL_PATH, RW_PLAYING_FLAGS);
  g_object_class_install_property(
      gobject_class, PROP_IOT_CERTIFICATE,
      g_param_spec_boxed("iot-certificate", "IoT certificate",
                         "AWS IoT credential provider settings (not supported yet: setting it fails the start).",
                         GST_TYPE_STRUCTURE, RW_FLAGS));
  g_object_class_install_property(
      gobject_class, PROP_STREAM_TAGS,
      g_param_spec_boxed("stream-tags", "Stream tags", "Tags applied to the stream with TagStream (string fields).",
                         GST_TYPE_STRUCTURE, RW_FLAGS));
  g_object_class_install_property(
      gobject_class, PROP_FILE_START_TIME,
      g_param_spec_uint64("file-start-time", "File start time",
                          "Epoch seconds added to buffer timestamps in offline mode (default: now).", 0, G_MAXUINT64,
                          0, RW_FLAGS));
  boolean(PROP_DISABLE_BUFFER_CLIPPING, "disable-buffer-clipping", "Disable buffer clipping",
          "Do not clip buffers to the segment.", DEFAULT_DISABLE_BUFFER_CLIPPING, RW_FLAGS);
  boolean(PROP_USE_ORIGINAL_PTS, "use-original-pts", "Use original PTS",
          "Use the buffers' DTS as epoch timestamps, without a wall-clock shift.", DEFAULT_USE_ORIGINAL_PTS, RW_FLAGS);
  boolean(PROP_GET_KVS_METRICS, "get-kvs-metrics", "Get KVS metrics",
          "Post stream metrics (kvssink-stats is always posted).", DEFAULT_GET_KVS_METRICS, RW_FLAGS);
  boolean(PROP_ALLOW_CREATE_STREAM, "allow-create-stream", "Allow create stream",
          "Create the stream when it does not exist.", DEFAULT_ALLOW_CREATE_STREAM, RW_FLAGS);
  str(PROP_ENDPOINT, "endpoint", "Endpoint",
      "Control-plane endpoint, scheme://host[:port] (default: CONTROL_PLANE_URI, else the AWS endpoint of the "
      "region).",
      nullptr, RW_FLAGS);
  str(PROP_PROFILE, "profile", "Profile",
      "AWS shared credentials/config profile (default: AWS_PROFILE when set).", nullptr, RW_PLAYING_FLAGS);
  str(PROP_CA_CERT, "ca-cert", "CA certificate",
      "CA certificate file (PEM) or directory of hashed certificates used to verify the endpoint's TLS certificate "
      "(default: KVSSINK_CA_CERT_PATH, AWS_KVS_CACERT_PATH or AWS_CA_BUNDLE, else the system store).",
      nullptr, RW_FLAGS);
  str(PROP_STORAGE_PATH, "storage-path", "Storage path",
      "Directory of an on-disk spool: fragments stay there until acknowledged, so that they survive a restart or a "
      "long outage and are sent again at their original timestamps (unset: memory only).",
      nullptr, RW_FLAGS);
  uintProp(PROP_STORAGE_PATH_SIZE, "storage-path-size", "Storage path size",
       "Most MiB the spool keeps per stream; above it the oldest fragments are deleted (kvssink-spool-dropped).", 1,
       G_MAXUINT, DEFAULT_STORAGE_PATH_SIZE_MB, RW_FLAGS);

  gst_element_class_add_static_pad_template(element_class, &video_template);
  gst_element_class_add_static_pad_template(element_class, &audio_template);
  gst_element_class_set_static_metadata(
      element_class, "KVS Sink", "Sink/Video/Network",
      "Uploads H.264/H.265 video (and AAC/G.711 audio) to Kinesis Video Streams with PutMedia. Bus messages: "
      "kvssink-stream-ready, kvssink-fragment-ack, kvssink-error, kvssink-connection, kvssink-dropped, "
      "kvssink-latency-pressure, kvssink-spool-dropped, kvssink-stats (see docs/kvssink.md).",
      "openkvs");
  gst_element_class_add_static_metadata(
      element_class, "bus-messages",
      "kvssink-stream-ready {stream-name: string, stream-arn: string}; "
      "kvssink-fragment-ack {event-type: string BUFFERING|RECEIVED|PERSISTED|ERROR, fragment-number: string, "
      "timecode: guint64 cluster timecode, latency-ms: guint64 fragment end to PERSISTED, error-id: guint}; "
      "kvssink-error {message: string, service-code: string, http-status: gint, error-id: guint, retryable: gboolean, "
      "fatal: gboolean, fragment-timecode: guint64}; "
      "kvssink-connection {connection-id: guint64, state: string connecting|closed|dropped|rotating, reason: string, "
      "http-status: gint}; "
      "kvssink-dropped {fragment-timecode: guint64, frames: guint, bytes: guint64}; "
      "kvssink-latency-pressure {buffered-duration-ms, max-latency-ms: guint64}; "
      "kvssink-spool-dropped {fragment-timecode, bytes: guint64}; "
      "kvssink-stats every second {bytes-sent, frames-sent, fragments-persisted, fragments-received, "
      "fragments-dropped, buffered-bytes, buffered-duration-ms, last-ack-latency-ms, connections: guint64; "
      "bitrate-bps: gdouble}. Fatal errors carry a kvssink-error-details structure {http-status, service-code, "
      "error-id, retryable, fragment-timecode}.");
  gst_element_class_add_static_metadata(element_class, GST_ELEMENT_METADATA_DOC_URI, "docs/kvssink.md");
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_kvs_sink_change_state);
  element_class->request_new_pad = GST_DEBUG_FUNCPTR(gst_kvs_sink_request_new_pad);
  element_class->release_pad = GST_DEBUG_FUNCPTR(gst_kvs_sink_release_pad);
  gst_type_mark_as_plugin_api(GST_TYPE_KVS_SINK_STREAMING_TYPE, static_cast<GstPluginAPIFlags>(0));
  GST_DEBUG_CATEGORY_INIT(gst_kvs_sink_debug, "kvssink", 0, "Kinesis Video Streams sink");
}

gboolean gst_kvs_sink_register(GstPlugin* plugin) {
  curl_global_init(CURL_GLOBAL_ALL);
  return gst_element_register(plugin, "kvssink", GST_RANK_PRIMARY + 10, GST_TYPE_KVS_SINK);
}
