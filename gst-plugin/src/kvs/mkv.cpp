#include "kvs/mkv.h"

#include <cstring>
#include <stdexcept>

#include "kvs/nal.h"

namespace kvs {

namespace ebml {

void appendBe(std::vector<uint8_t>& out, uint64_t value, size_t bytes) {
  for (size_t i = bytes; i > 0; --i) out.push_back(static_cast<uint8_t>(value >> (8 * (i - 1))));
}

void appendId(std::vector<uint8_t>& out, uint32_t id) {
  size_t bytes = 1;
  while (bytes < 4 && (id >> (8 * bytes)) != 0) ++bytes;
  appendBe(out, id, bytes);
}

size_t vintWidth(uint64_t value) {
  size_t width = 1;
  while (width < 8 && value >= (uint64_t{1} << (7 * width)) - 1) ++width;
  return width;
}

void appendVint(std::vector<uint8_t>& out, uint64_t value, size_t width) {
  if (width < 1 || width > 8 || value >= (uint64_t{1} << (7 * width)) - 1) {
    throw std::invalid_argument("EBML size does not fit the vint width");
  }
  appendBe(out, value | (uint64_t{1} << (7 * width)), width);
}

size_t beginElement(std::vector<uint8_t>& out, uint32_t id, size_t width) {
  appendId(out, id);
  const size_t sizePos = out.size();
  out.insert(out.end(), width, 0);
  return sizePos;
}

void endElement(std::vector<uint8_t>& out, size_t sizePos, size_t width) {
  std::vector<uint8_t> size;
  appendVint(size, out.size() - sizePos - width, width);
  std::memcpy(out.data() + sizePos, size.data(), width);
}

}  // namespace ebml

namespace {

using namespace ebml;

// Element IDs (Matroska / EBML specifications).
constexpr uint32_t kEbml = 0x1A45DFA3, kEbmlVersion = 0x4286, kEbmlReadVersion = 0x42F7,
                   kEbmlMaxIdLength = 0x42F2, kEbmlMaxSizeLength = 0x42F3, kDocType = 0x4282,
                   kDocTypeVersion = 0x4287, kDocTypeReadVersion = 0x4285;
constexpr uint32_t kSegment = 0x18538067, kInfo = 0x1549A966, kSegmentUid = 0x73A4,
                   kTimecodeScale = 0x2AD7B1, kTitleId = 0x7BA9, kMuxingAppId = 0x4D80,
                   kWritingAppId = 0x5741;
constexpr uint32_t kTracks = 0x1654AE6B, kTrackEntry = 0xAE, kTrackNumber = 0xD7,
                   kTrackUid = 0x73C5, kTrackType = 0x83, kName = 0x536E, kCodecId = 0x86,
                   kCodecPrivate = 0x63A2, kVideo = 0xE0, kPixelWidth = 0xB0,
                   kPixelHeight = 0xBA, kAudio = 0xE1, kSamplingFrequency = 0xB5,
                   kChannels = 0x9F, kBitDepth = 0x6264;
constexpr uint32_t kCluster = 0x1F43B675, kTimecode = 0xE7, kPosition = 0xA7,
                   kSimpleBlock = 0xA3;
constexpr uint32_t kTags = 0x1254C367, kTag = 0x7373, kSimpleTag = 0x67C8, kTagName = 0x45A3,
                   kTagString = 0x4487;

// An element whose payload is an unsigned integer of exactly `bytes` bytes, size as 1-byte vint.
void appendUint(std::vector<uint8_t>& out, uint32_t id, uint64_t value, size_t bytes) {
  appendId(out, id);
  appendVint(out, bytes, 1);
  appendBe(out, value, bytes);
}

// An element holding raw bytes with a size vint of `width` bytes (0 = minimal width).
void appendBytes(std::vector<uint8_t>& out, uint32_t id, const uint8_t* data, size_t size,
                 size_t width = 0) {
  appendId(out, id);
  appendVint(out, size, width == 0 ? vintWidth(size) : width);
  out.insert(out.end(), data, data + size);
}

void appendString(std::vector<uint8_t>& out, uint32_t id, const std::string& s, size_t width = 0) {
  appendBytes(out, id, reinterpret_cast<const uint8_t*>(s.data()), s.size(), width);
}

uint16_t readLe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

uint32_t readLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// Fills in what the codec private data tells about a track, unless it was given explicitly.
TrackConfig resolve(const TrackConfig& configured) {
  TrackConfig t = configured;
  const std::vector<uint8_t>& cpd = t.codecPrivate;
  if (t.type == TrackType::Video && (t.width == 0 || t.height == 0)) {
    t.width = t.height = 0;
    uint32_t w = 0, h = 0;
    if (t.codecId == "V_MPEG4/ISO/AVC" && dimensionsFromCodecPrivate(VideoCodec::H264, cpd, w, h)) {
      t.width = w;
      t.height = h;
    } else if (t.codecId == "V_MPEGH/ISO/HEVC" &&
               dimensionsFromCodecPrivate(VideoCodec::H265, cpd, w, h)) {
      t.width = w;
      t.height = h;
    }
  }
  if (t.type == TrackType::Audio && !(t.samplingFrequency > 0)) {
    t.samplingFrequency = 0;
    double rate = 0;
    uint32_t channels = 0;
    if (t.codecId == "A_AAC" && aacConfig(cpd, rate, channels)) {
      t.samplingFrequency = rate;
      t.channels = channels;
    } else if (t.codecId == "A_MS/ACM" && cpd.size() >= 16) {
      // WAVEFORMATEX: tag, channels, rate, avg bytes/s, block align, bits per sample (LE).
      const uint16_t wavChannels = readLe16(cpd.data() + 2);
      const uint32_t wavRate = readLe32(cpd.data() + 4);
      const uint16_t wavBits = readLe16(cpd.data() + 14);
      if (wavRate > 0 && wavChannels <= 255 && wavBits <= 255) {
        t.samplingFrequency = wavRate;
        t.channels = wavChannels;
        if (wavBits != 0) t.bitDepth = wavBits;
      }
    }
  }
  return t;
}

void validate(const std::vector<TrackConfig>& tracks) {
  for (size_t i = 0; i < tracks.size(); ++i) {
    const TrackConfig& t = tracks[i];
    if (t.number < 1 || t.number > 126) {
      throw std::invalid_argument("MKV track number must be in 1..126");
    }
    if (t.uid == 0) throw std::invalid_argument("MKV track UID must not be 0");
    if (t.channels > 255 || t.bitDepth > 255) {
      throw std::invalid_argument("MKV audio channels / bit depth must be <= 255");
    }
    for (size_t j = 0; j < i; ++j) {
      if (tracks[j].number == t.number) throw std::invalid_argument("duplicate MKV track number");
    }
  }
}

void appendTrackEntry(std::vector<uint8_t>& out, const TrackConfig& t) {
  const size_t entry = beginElement(out, kTrackEntry, 4);
  appendUint(out, kTrackNumber, t.number, 1);
  appendUint(out, kTrackUid, t.uid, 8);
  appendUint(out, kTrackType, static_cast<uint8_t>(t.type), 1);
  if (!t.name.empty()) appendString(out, kName, t.name);
  if (!t.codecId.empty()) appendString(out, kCodecId, t.codecId);
  if (t.type == TrackType::Video && t.width > 0 && t.height > 0 && t.width <= 0xFFFF &&
      t.height <= 0xFFFF) {
    const size_t video = beginElement(out, kVideo, 4);
    appendUint(out, kPixelWidth, t.width, 2);
    appendUint(out, kPixelHeight, t.height, 2);
    endElement(out, video, 4);
  } else if (t.type == TrackType::Audio && t.samplingFrequency > 0) {
    const size_t audio = beginElement(out, kAudio, 4);
    uint64_t frequencyBits = 0;
    std::memcpy(&frequencyBits, &t.samplingFrequency, sizeof frequencyBits);
    appendUint(out, kSamplingFrequency, frequencyBits, 8);
    appendUint(out, kChannels, t.channels == 0 ? 1 : t.channels, 1);
    if (t.bitDepth != 0) appendUint(out, kBitDepth, t.bitDepth, 1);
    endElement(out, audio, 4);
  }
  if (!t.codecPrivate.empty()) {
    appendBytes(out, kCodecPrivate, t.codecPrivate.data(), t.codecPrivate.size());
  }
  endElement(out, entry, 4);
}

}  // namespace

MkvWriter::MkvWriter(std::vector<TrackConfig> tracks, uint64_t timecodeScaleNs,
                     const std::array<uint8_t, 16>& segmentUid)
    : configured_(std::move(tracks)), timecodeScaleNs_(timecodeScaleNs), segmentUid_(segmentUid) {
  if (timecodeScaleNs_ == 0) throw std::invalid_argument("MKV timecode scale must not be 0");
  validate(configured_);
  tracks_.reserve(configured_.size());
  for (const TrackConfig& t : configured_) tracks_.push_back(resolve(t));
}

void MkvWriter::setCodecPrivate(uint64_t trackNumber, std::vector<uint8_t> cpd) {
  for (size_t i = 0; i < configured_.size(); ++i) {
    if (configured_[i].number == trackNumber) {
      configured_[i].codecPrivate = std::move(cpd);
      tracks_[i] = resolve(configured_[i]);
      return;
    }
  }
  throw std::invalid_argument("unknown MKV track number");
}

std::vector<uint8_t> MkvWriter::streamHeader() const {
  std::vector<uint8_t> out;
  out.reserve(256);

  // EBML header: 35-byte payload (§6.1).
  const size_t ebmlPos = beginElement(out, kEbml, 1);
  appendUint(out, kEbmlVersion, 1, 1);
  appendUint(out, kEbmlReadVersion, 1, 1);
  appendUint(out, kEbmlMaxIdLength, 4, 1);
  appendUint(out, kEbmlMaxSizeLength, 8, 1);
  appendString(out, kDocType, "matroska");
  appendUint(out, kDocTypeVersion, 2, 1);
  appendUint(out, kDocTypeReadVersion, 2, 1);
  endElement(out, ebmlPos, 1);

  // Segment of unknown size (§6.2).
  appendId(out, kSegment);
  out.push_back(0xFF);

  const size_t infoPos = beginElement(out, kInfo, 2);
  appendBytes(out, kSegmentUid, segmentUid_.data(), segmentUid_.size());
  appendUint(out, kTimecodeScale, timecodeScaleNs_, 8);
  appendString(out, kTitleId, kTitle);
  appendString(out, kMuxingAppId, kMuxingApp);
  appendString(out, kWritingAppId, kMuxingApp);
  endElement(out, infoPos, 2);

  // Tracks (§6.3).
  const size_t tracksPos = beginElement(out, kTracks, 4);
  for (const TrackConfig& t : tracks_) appendTrackEntry(out, t);
  endElement(out, tracksPos, 4);
  return out;
}

std::vector<uint8_t> MkvWriter::clusterHeader(uint64_t clusterTimecode) const {
  std::vector<uint8_t> out;
  out.reserve(kClusterHeaderSize);
  appendId(out, kCluster);
  out.push_back(0xFF);  // unknown size
  appendUint(out, kTimecode, clusterTimecode, 8);
  appendUint(out, kPosition, 0, 1);
  return out;
}

void MkvWriter::simpleBlockHeader(uint8_t* out, size_t& len, uint64_t trackNumber,
                                  int16_t relativeTimecode, bool keyframe, size_t payloadSize) {
  if (trackNumber < 1 || trackNumber > 126) {
    throw std::invalid_argument("MKV track number must be in 1..126");
  }
  const uint64_t size = uint64_t{payloadSize} + 4;
  const auto timecode = static_cast<uint16_t>(relativeTimecode);
  out[0] = static_cast<uint8_t>(kSimpleBlock);
  out[1] = 0x01;  // 8-byte vint marker
  for (int i = 0; i < 7; ++i) out[2 + i] = static_cast<uint8_t>(size >> (8 * (6 - i)));
  out[9] = static_cast<uint8_t>(0x80 | trackNumber);
  out[10] = static_cast<uint8_t>(timecode >> 8);
  out[11] = static_cast<uint8_t>(timecode);
  out[12] = keyframe ? 0x80 : 0x00;
  len = kSimpleBlockHeaderSize;
}

std::vector<uint8_t> MkvWriter::tags(
    const std::vector<std::pair<std::string, std::string>>& simpleTags) {
  std::vector<uint8_t> out;
  if (simpleTags.empty()) return out;
  const size_t tagsPos = beginElement(out, kTags, 8);
  const size_t tagPos = beginElement(out, kTag, 8);
  for (const auto& [name, value] : simpleTags) {
    const size_t simpleTagPos = beginElement(out, kSimpleTag, 8);
    appendString(out, kTagName, name, 8);
    appendString(out, kTagString, value, 8);
    endElement(out, simpleTagPos, 8);
  }
  endElement(out, tagPos, 8);
  endElement(out, tagsPos, 8);
  return out;
}

std::vector<uint8_t> MkvWriter::endOfFragmentTags() {
  return tags({{kEndOfFragmentTagName, ""}});
}

}  // namespace kvs
