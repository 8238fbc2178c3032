// MKV writer for PutMedia bodies, byte-compatible with the AWS producer (PIC mkvgen, see
// docs/spec/producer-protocol.md §6): the same element order and the same fixed-width sizes.
//
//   streamHeader()       EBML header, Segment (unknown size), Info, Tracks  -- once per session
//   tags(...)            Tags (fragment metadata, before a Cluster)
//   clusterHeader(tc)    Cluster (unknown size), Timecode, Position         -- once per fragment
//   simpleBlockHeader()  SimpleBlock header; the frame bytes follow as-is   -- once per frame
//   endOfFragmentTags()  Tags{AWS_KINESISVIDEO_END_OF_FRAGMENT}              -- closes a fragment
//
// Info carries the AWS producer's own Title / MuxingApp / WritingApp strings ("Kinesis Video SDK",
// "Kinesis Video SDK 1.1.0"), so a body from this writer is byte-identical to one from the AWS
// kvssink (§6.7) and needs no special case on any server.
//
// Plain C++, no GStreamer types. An MkvWriter is immutable after construction except for
// setCodecPrivate(); its const methods may be called from several threads at once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kvs {

enum class TrackType : uint8_t { Video = 1, Audio = 2 };

struct TrackConfig {
  uint64_t number = 1;  // TrackNumber: 1-based index in the track list (1..126)
  uint64_t uid = 1;     // TrackUID: kvssink uses video 1, audio 2 (audio-only stream: 1); not 0
  TrackType type = TrackType::Video;
  std::string name;     // "kinesis_video" / "audio"; omitted if empty
  std::string codecId;  // V_MPEG4/ISO/AVC, V_MPEGH/ISO/HEVC, A_AAC, A_MS/ACM; omitted if empty
  std::vector<uint8_t> codecPrivate;  // omitted if empty
  // Video element (PixelWidth/PixelHeight) only when both are known and <= 65535. When either
  // is 0, both are taken from the SPS inside codecPrivate (avcC / hvcC) if it parses.
  uint32_t width = 0, height = 0;
  // Audio element when samplingFrequency > 0. When it is 0, frequency and channels come from
  // codecPrivate: the AudioSpecificConfig for A_AAC, the WAVEFORMATEX for A_MS/ACM (which also
  // gives the bit depth). Channels is written as 1 byte (0 is written as 1); BitDepth only if
  // non-zero.
  double samplingFrequency = 0;
  uint32_t channels = 0;
  uint32_t bitDepth = 0;
};

class MkvWriter {
 public:
  static constexpr size_t kSimpleBlockHeaderSize = 13;
  static constexpr size_t kClusterHeaderSize = 18;
  static constexpr const char* kTitle = "Kinesis Video SDK";
  static constexpr const char* kMuxingApp = "Kinesis Video SDK 1.1.0";  // also WritingApp
  static constexpr const char* kEndOfFragmentTagName = "AWS_KINESISVIDEO_END_OF_FRAGMENT";

  // Throws std::invalid_argument for a zero timecode scale, a track number outside 1..126, a
  // zero track UID, a duplicate track number, or more than 255 channels / bits.
  MkvWriter(std::vector<TrackConfig> tracks, uint64_t timecodeScaleNs,
            const std::array<uint8_t, 16>& segmentUid);

  // The tracks as written: width/height and audio fields filled in from the codec private data.
  const std::vector<TrackConfig>& tracks() const { return tracks_; }

  // Replaces the codec private data of a track (by TrackNumber) and re-derives the video/audio
  // fields from it (values given explicitly in the constructor still win). Call it before the
  // header of the session that should carry it is generated; it is not synchronised with
  // concurrent const calls. Throws std::invalid_argument for an unknown track number.
  void setCodecPrivate(uint64_t trackNumber, std::vector<uint8_t> cpd);

  // EBML header + Segment (unknown size) + Info + Tracks (§6.1–6.3).
  std::vector<uint8_t> streamHeader() const;

  // Cluster (unknown size) + Timecode (8 bytes) + Position 0 (§6.4): 18 bytes.
  std::vector<uint8_t> clusterHeader(uint64_t clusterTimecode) const;

  // Writes the 13-byte SimpleBlock header for a payload of payloadSize bytes into out (which must
  // hold kSimpleBlockHeaderSize bytes) and sets len to 13: A3, 8-byte size vint (payload + 4),
  // track number vint, big-endian relative timecode, flags (0x80 for a key frame) (§6.5).
  // Throws std::invalid_argument for a track number outside 1..126.
  static void simpleBlockHeader(uint8_t* out, size_t& len, uint64_t trackNumber,
                                int16_t relativeTimecode, bool keyframe, size_t payloadSize);

  // Tags{Tag{SimpleTag{TagName, TagString}...}} with 8-byte sizes everywhere and no Targets
  // (§6.6). An empty list gives an empty vector.
  static std::vector<uint8_t> tags(
      const std::vector<std::pair<std::string, std::string>>& simpleTags);

  // Tags with AWS_KINESISVIDEO_END_OF_FRAGMENT and an empty value (EoFR, §6.6).
  static std::vector<uint8_t> endOfFragmentTags();

 private:
  std::vector<TrackConfig> configured_;  // as given (with the latest codec private data)
  std::vector<TrackConfig> tracks_;      // as written
  uint64_t timecodeScaleNs_;
  std::array<uint8_t, 16> segmentUid_;
};

// Low-level EBML writing used by MkvWriter (exposed for tests and for code that patches bytes).
namespace ebml {

// Appends `value` as `bytes` big-endian bytes (1..8).
void appendBe(std::vector<uint8_t>& out, uint64_t value, size_t bytes);
// Appends an element ID (its bytes as written in the spec, e.g. 0x1A45DFA3).
void appendId(std::vector<uint8_t>& out, uint32_t id);
// Smallest vint width (1..8) that can hold `value` (the all-ones pattern is reserved).
size_t vintWidth(uint64_t value);
// Appends `value` as a vint of exactly `width` bytes (1..8). Throws std::invalid_argument if it
// does not fit.
void appendVint(std::vector<uint8_t>& out, uint64_t value, size_t width);
// Master element helpers: begin writes the ID and a placeholder size of `width` bytes and
// returns the size position; end patches in the size of everything appended since.
size_t beginElement(std::vector<uint8_t>& out, uint32_t id, size_t width);
void endElement(std::vector<uint8_t>& out, size_t sizePos, size_t width);

}  // namespace ebml
}  // namespace kvs
