// Tests of kvs/mkv.h: byte-exact against the AWS producer's output (§6.7 of the producer protocol
// spec), structure checked with a small EBML reader, and whole files read back by ffprobe.
#include "kvs/mkv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "kvs/nal.h"

namespace {

using Bytes = std::vector<uint8_t>;
using kvs::MkvWriter;
using kvs::TrackConfig;
using kvs::TrackType;
using kvs::VideoCodec;

const std::array<uint8_t, 16> kUid = {0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87,
                                      0x98, 0xA9, 0xBA, 0xCB, 0xDC, 0xED, 0xFE, 0x0F};

// "1A45 DF" -> bytes; spaces ignored.
Bytes hex(const std::string& s) {
  Bytes out;
  std::string digits;
  for (char c : s) {
    if (c != ' ' && c != '\n') digits.push_back(c);
  }
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes readFile(const std::string& name) {
  std::ifstream in(std::string(KVS_TEST_DATA_DIR) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// ---- A small EBML reader ---------------------------------------------------------------------

struct Element {
  uint32_t id = 0;
  size_t sizeWidth = 0;
  bool unknownSize = false;
  size_t data = 0;  // offset of the payload
  size_t size = 0;  // payload size (to the end of the buffer when unknown)
};

// Reads the element header at `pos`; throws on malformed input.
Element readElement(const Bytes& b, size_t pos) {
  auto vintLength = [&](size_t at) {
    if (at >= b.size() || b[at] == 0) throw std::runtime_error("bad vint");
    size_t len = 1;
    while (!(b[at] & (0x80 >> (len - 1)))) ++len;
    if (at + len > b.size()) throw std::runtime_error("truncated vint");
    return len;
  };
  Element e;
  const size_t idLength = vintLength(pos);
  for (size_t i = 0; i < idLength; ++i) e.id = e.id << 8 | b[pos + i];
  pos += idLength;
  e.sizeWidth = vintLength(pos);
  uint64_t size = b[pos] & (0xFF >> e.sizeWidth);
  bool allOnes = size == (0xFFu >> e.sizeWidth);
  for (size_t i = 1; i < e.sizeWidth; ++i) {
    size = size << 8 | b[pos + i];
    allOnes = allOnes && b[pos + i] == 0xFF;
  }
  e.data = pos + e.sizeWidth;
  e.unknownSize = allOnes;
  e.size = allOnes ? b.size() - e.data : static_cast<size_t>(size);
  if (e.data + e.size > b.size()) throw std::runtime_error("element past the end");
  return e;
}

std::vector<Element> children(const Bytes& b, const Element& parent) {
  std::vector<Element> out;
  for (size_t pos = parent.data; pos < parent.data + parent.size;) {
    out.push_back(readElement(b, pos));
    pos = out.back().data + out.back().size;
  }
  return out;
}

std::vector<uint32_t> ids(const std::vector<Element>& elements) {
  std::vector<uint32_t> out;
  for (const Element& e : elements) out.push_back(e.id);
  return out;
}

uint64_t uintValue(const Bytes& b, const Element& e) {
  uint64_t v = 0;
  for (size_t i = 0; i < e.size; ++i) v = v << 8 | b[e.data + i];
  return v;
}

std::string stringValue(const Bytes& b, const Element& e) {
  return std::string(b.begin() + static_cast<long>(e.data),
                     b.begin() + static_cast<long>(e.data + e.size));
}

const Element& find(const std::vector<Element>& elements, uint32_t id) {
  for (const Element& e : elements) {
    if (e.id == id) return e;
  }
  throw std::runtime_error("element not found");
}

// The Segment element of a stream header (after the 40-byte EBML header).
Element segmentOf(const Bytes& header) { return readElement(header, 40); }

// ---- Track configurations ----------------------------------------------------------------------

TrackConfig videoTrack(std::vector<uint8_t> cpd, const char* codecId = "V_MPEG4/ISO/AVC") {
  TrackConfig t;
  t.number = 1;
  t.uid = 1;
  t.type = TrackType::Video;
  t.name = "kinesis_video";
  t.codecId = codecId;
  t.codecPrivate = std::move(cpd);
  return t;
}

TrackConfig audioTrack(uint64_t number, const char* codecId, std::vector<uint8_t> cpd) {
  TrackConfig t;
  t.number = number;
  t.uid = number;
  t.type = TrackType::Audio;
  t.name = "audio";
  t.codecId = codecId;
  t.codecPrivate = std::move(cpd);
  return t;
}

// ---- Byte-exact checks against §6 --------------------------------------------------------

TEST(Mkv, StreamHeaderMatchesTheAwsProducerByteForByte) {
  // §6.7: H.264 640x480 with a 45-byte avcC (only its first bytes are quoted; the rest is filler).
  Bytes avcc = hex("01 F4 00 1E FF E1");
  avcc.resize(45, 0x5A);
  TrackConfig video = videoTrack(avcc);
  video.width = 640;
  video.height = 480;
  const MkvWriter writer({video}, 1000000, kUid);

  const Bytes expected = cat({
      hex("1A45DFA3 A3 4286810142F7810142F2810442F381084282886D6174726F736B614287810242858102"),
      hex("18538067 FF"),
      hex("1549A966 4067 73A490"), Bytes(kUid.begin(), kUid.end()),
      hex("2AD7B188 00000000000F4240"),
      hex("7BA991"), text("Kinesis Video SDK"), hex("4D8097"), text("Kinesis Video SDK 1.1.0"),
      hex("574197"), text("Kinesis Video SDK 1.1.0"),
      hex("1654AE6B 10000074 AE 1000006F D78101 73C588 0000000000000001 838101 536E8D"),
      text("kinesis_video"), hex("868F"), text("V_MPEG4/ISO/AVC"),
      hex("E0 10000008 B082 0280 BA82 01E0 63A2AD"), avcc});
  EXPECT_EQ(writer.streamHeader(), expected);
}

TEST(Mkv, ClusterHeaderMatchesTheExample) {
  const MkvWriter writer({videoTrack({})}, 1000000, kUid);
  EXPECT_EQ(writer.clusterHeader(1795624862718), hex("1F43B675 FF E788 000001A2139503FE A78100"));
  EXPECT_EQ(writer.clusterHeader(0).size(), MkvWriter::kClusterHeaderSize);
}

TEST(Mkv, SimpleBlockHeaderMatchesTheExample) {
  uint8_t out[MkvWriter::kSimpleBlockHeaderSize + 4];
  std::memset(out, 0xEE, sizeof out);
  size_t len = 0;
  // §6.7 prints this size as "0100000000000027F5", one 00 byte too many for the 8-byte vint
  // that §6.5 and the 13-byte header call for; the AWS producer writes 01 00 00 00 00 00 27 F5.
  MkvWriter::simpleBlockHeader(out, len, 1, 0, true, 0x27F5 - 4);
  ASSERT_EQ(len, 13u);
  EXPECT_EQ(Bytes(out, out + len), hex("A3 01000000000027F5 81 0000 80"));
  EXPECT_EQ(out[13], 0xEE) << "writes exactly 13 bytes";

  MkvWriter::simpleBlockHeader(out, len, 1, 34, false, 100);
  EXPECT_EQ(Bytes(out, out + len), hex("A3 0100000000000068 81 0022 00"));
  MkvWriter::simpleBlockHeader(out, len, 2, -2, false, 0);
  EXPECT_EQ(Bytes(out, out + len), hex("A3 0100000000000004 82 FFFE 00"));
  MkvWriter::simpleBlockHeader(out, len, 126, 32767, true, 1);
  EXPECT_EQ(Bytes(out, out + len), hex("A3 0100000000000005 FE 7FFF 80"));
  EXPECT_THROW(MkvWriter::simpleBlockHeader(out, len, 127, 0, true, 1), std::invalid_argument);
  EXPECT_THROW(MkvWriter::simpleBlockHeader(out, len, 0, 0, true, 1), std::invalid_argument);
}

TEST(Mkv, EndOfFragmentTags) {
  const Bytes expected = cat({hex("1254C367 0100000000000048"), hex("7373 010000000000003E"),
                              hex("67C8 0100000000000034"), hex("45A3 0100000000000020"),
                              text("AWS_KINESISVIDEO_END_OF_FRAGMENT"),
                              hex("4487 0100000000000000")});
  EXPECT_EQ(MkvWriter::endOfFragmentTags(), expected);
}

TEST(Mkv, TagsWithSeveralSimpleTags) {
  const Bytes tags = MkvWriter::tags({{"a", "bc"}, {"name", ""}});
  const Bytes expected = cat({hex("1254C367 010000000000004D"), hex("7373 0100000000000043"),
                              hex("67C8 0100000000000017 45A3 0100000000000001"), text("a"),
                              hex("4487 0100000000000002"), text("bc"),
                              hex("67C8 0100000000000018 45A3 0100000000000004"), text("name"),
                              hex("4487 0100000000000000")});
  EXPECT_EQ(tags, expected);
  EXPECT_TRUE(MkvWriter::tags({}).empty());
}

// ---- Structure checks with the EBML reader ----------------------------------------------------

TEST(Mkv, AudioVideoHeaderLayout) {
  const Bytes stream = readFile("h264_320x240.h264");
  const Bytes avcc = kvs::codecPrivateFromAnnexB(VideoCodec::H264, stream.data(), stream.size());
  ASSERT_FALSE(avcc.empty());
  TrackConfig audio = audioTrack(2, "A_AAC", {0x12, 0x10});
  const MkvWriter writer({videoTrack(avcc), audio}, 1000000, kUid);
  ASSERT_EQ(writer.tracks().size(), 2u);
  EXPECT_EQ(writer.tracks()[0].width, 320u);
  EXPECT_EQ(writer.tracks()[0].height, 240u);
  EXPECT_EQ(writer.tracks()[1].samplingFrequency, 44100.0);
  EXPECT_EQ(writer.tracks()[1].channels, 2u);

  const Bytes header = writer.streamHeader();
  const Element ebml = readElement(header, 0);
  EXPECT_EQ(ebml.id, 0x1A45DFA3u);
  EXPECT_EQ(ebml.size, 35u);
  const Element segment = readElement(header, ebml.data + ebml.size);
  EXPECT_EQ(segment.id, 0x18538067u);
  EXPECT_TRUE(segment.unknownSize);
  const std::vector<Element> top = children(header, segment);
  ASSERT_EQ(ids(top), (std::vector<uint32_t>{0x1549A966, 0x1654AE6B}));
  EXPECT_EQ(top[0].sizeWidth, 2u);
  EXPECT_EQ(top[1].sizeWidth, 4u);

  const std::vector<Element> info = children(header, top[0]);
  ASSERT_EQ(ids(info), (std::vector<uint32_t>{0x73A4, 0x2AD7B1, 0x7BA9, 0x4D80, 0x5741}));
  EXPECT_EQ(Bytes(header.begin() + static_cast<long>(info[0].data),
                  header.begin() + static_cast<long>(info[0].data + 16)),
            Bytes(kUid.begin(), kUid.end()));
  EXPECT_EQ(info[1].size, 8u);
  EXPECT_EQ(uintValue(header, info[1]), 1000000u);
  EXPECT_EQ(stringValue(header, info[2]), "Kinesis Video SDK");
  EXPECT_EQ(stringValue(header, info[4]), "Kinesis Video SDK 1.1.0");

  const std::vector<Element> tracks = children(header, top[1]);
  ASSERT_EQ(ids(tracks), (std::vector<uint32_t>{0xAE, 0xAE}));
  for (const Element& t : tracks) EXPECT_EQ(t.sizeWidth, 4u);

  const std::vector<Element> v = children(header, tracks[0]);
  ASSERT_EQ(ids(v), (std::vector<uint32_t>{0xD7, 0x73C5, 0x83, 0x536E, 0x86, 0xE0, 0x63A2}));
  EXPECT_EQ(uintValue(header, v[0]), 1u);
  EXPECT_EQ(v[1].size, 8u);
  EXPECT_EQ(uintValue(header, v[1]), 1u);
  EXPECT_EQ(uintValue(header, v[2]), 1u);
  EXPECT_EQ(stringValue(header, v[3]), "kinesis_video");
  EXPECT_EQ(stringValue(header, v[4]), "V_MPEG4/ISO/AVC");
  const std::vector<Element> video = children(header, v[5]);
  ASSERT_EQ(ids(video), (std::vector<uint32_t>{0xB0, 0xBA}));
  EXPECT_EQ(uintValue(header, video[0]), 320u);
  EXPECT_EQ(uintValue(header, video[1]), 240u);
  EXPECT_EQ(v[6].size, avcc.size());
  EXPECT_EQ(v[6].sizeWidth, avcc.size() < 127 ? 1u : 2u);

  const std::vector<Element> a = children(header, tracks[1]);
  ASSERT_EQ(ids(a), (std::vector<uint32_t>{0xD7, 0x73C5, 0x83, 0x536E, 0x86, 0xE1, 0x63A2}));
  EXPECT_EQ(uintValue(header, a[0]), 2u);
  EXPECT_EQ(uintValue(header, a[1]), 2u);
  EXPECT_EQ(uintValue(header, a[2]), 2u);
  EXPECT_EQ(stringValue(header, a[3]), "audio");
  EXPECT_EQ(stringValue(header, a[4]), "A_AAC");
  EXPECT_EQ(a[5].size, 13u);
  const std::vector<Element> audioInfo = children(header, a[5]);
  ASSERT_EQ(ids(audioInfo), (std::vector<uint32_t>{0xB5, 0x9F}));
  const uint64_t bits = uintValue(header, audioInfo[0]);
  double frequency = 0;
  std::memcpy(&frequency, &bits, sizeof frequency);
  EXPECT_EQ(frequency, 44100.0);
  EXPECT_EQ(uintValue(header, audioInfo[1]), 2u);
  EXPECT_EQ(stringValue(header, a[6]), std::string("\x12\x10"));
}

TEST(Mkv, G711TrackHasNoBitDepthButExplicitBitDepthIsWritten) {
  const MkvWriter alaw({audioTrack(1, "A_MS/ACM", kvs::pcmCodecPrivate(true, 1, 8000))}, 1000000,
                       kUid);
  EXPECT_EQ(alaw.tracks()[0].samplingFrequency, 8000.0);
  EXPECT_EQ(alaw.tracks()[0].channels, 1u);
  Bytes header = alaw.streamHeader();
  Element segment = segmentOf(header);
  Element track = children(header, children(header, segment)[1])[0];
  Element audio = find(children(header, track), 0xE1);
  EXPECT_EQ(audio.size, 13u);

  TrackConfig config = audioTrack(1, "A_MS/ACM", kvs::pcmCodecPrivate(false, 2, 16000));
  config.samplingFrequency = 16000;
  config.channels = 2;
  config.bitDepth = 8;
  const MkvWriter mulaw({config}, 1000000, kUid);
  header = mulaw.streamHeader();
  segment = segmentOf(header);
  track = children(header, children(header, segment)[1])[0];
  audio = find(children(header, track), 0xE1);
  EXPECT_EQ(audio.size, 17u);
  const std::vector<Element> fields = children(header, audio);
  ASSERT_EQ(ids(fields), (std::vector<uint32_t>{0xB5, 0x9F, 0x6264}));
  EXPECT_EQ(uintValue(header, fields[1]), 2u);
  EXPECT_EQ(uintValue(header, fields[2]), 8u);
}

TEST(Mkv, SetCodecPrivateRecomputesTheVideoSize) {
  MkvWriter writer({videoTrack({})}, 1000000, kUid);
  Bytes header = writer.streamHeader();
  Element tracks = children(header, segmentOf(header))[1];
  EXPECT_EQ(ids(children(header, children(header, tracks)[0])),
            (std::vector<uint32_t>{0xD7, 0x73C5, 0x83, 0x536E, 0x86}));

  const Bytes stream = readFile("h265_642x362.h265");
  Bytes hvcc = kvs::codecPrivateFromAnnexB(VideoCodec::H265, stream.data(), stream.size());
  EXPECT_THROW(writer.setCodecPrivate(2, hvcc), std::invalid_argument);
  MkvWriter hevc({videoTrack({}, "V_MPEGH/ISO/HEVC")}, 1000000, kUid);
  hevc.setCodecPrivate(1, hvcc);
  EXPECT_EQ(hevc.tracks()[0].width, 642u);
  EXPECT_EQ(hevc.tracks()[0].height, 362u);
  EXPECT_EQ(hevc.tracks()[0].codecPrivate, hvcc);
  header = hevc.streamHeader();
  tracks = children(header, segmentOf(header))[1];
  const std::vector<Element> entry = children(header, children(header, tracks)[0]);
  ASSERT_EQ(ids(entry), (std::vector<uint32_t>{0xD7, 0x73C5, 0x83, 0x536E, 0x86, 0xE0, 0x63A2}));
  EXPECT_EQ(entry[6].size, hvcc.size());

  // Explicit sizes win over the SPS.
  TrackConfig config = videoTrack({}, "V_MPEGH/ISO/HEVC");
  config.width = 100;
  config.height = 50;
  MkvWriter fixed({config}, 1000000, kUid);
  fixed.setCodecPrivate(1, hvcc);
  EXPECT_EQ(fixed.tracks()[0].width, 100u);
  EXPECT_EQ(fixed.tracks()[0].height, 50u);
}

TEST(Mkv, InvalidConfigurationsThrow) {
  TrackConfig bad = videoTrack({});
  bad.number = 0;
  EXPECT_THROW(MkvWriter({bad}, 1000000, kUid), std::invalid_argument);
  bad.number = 127;
  EXPECT_THROW(MkvWriter({bad}, 1000000, kUid), std::invalid_argument);
  bad = videoTrack({});
  bad.uid = 0;
  EXPECT_THROW(MkvWriter({bad}, 1000000, kUid), std::invalid_argument);
  EXPECT_THROW(MkvWriter({videoTrack({}), videoTrack({})}, 1000000, kUid), std::invalid_argument);
  EXPECT_THROW(MkvWriter({videoTrack({})}, 0, kUid), std::invalid_argument);
}

TEST(Mkv, EbmlHelpers) {
  EXPECT_EQ(kvs::ebml::vintWidth(0), 1u);
  EXPECT_EQ(kvs::ebml::vintWidth(126), 1u);
  EXPECT_EQ(kvs::ebml::vintWidth(127), 2u);  // 0xFF alone would mean "unknown size"
  EXPECT_EQ(kvs::ebml::vintWidth(16382), 2u);
  EXPECT_EQ(kvs::ebml::vintWidth(16383), 3u);
  Bytes out;
  kvs::ebml::appendVint(out, 0x74, 4);
  EXPECT_EQ(out, hex("10000074"));
  EXPECT_THROW(kvs::ebml::appendVint(out, 127, 1), std::invalid_argument);
  out.clear();
  kvs::ebml::appendId(out, 0xA3);
  kvs::ebml::appendId(out, 0x4286);
  kvs::ebml::appendId(out, 0x2AD7B1);
  kvs::ebml::appendId(out, 0x1A45DFA3);
  EXPECT_EQ(out, hex("A3 4286 2AD7B1 1A45DFA3"));
}

// ---- Whole files read back by ffprobe ---------------------------------------------------------

struct Frame {
  Bytes data;  // MKV block payload
  uint64_t track = 1;
  uint64_t timecode = 0;  // absolute, in ms
  bool key = false;
};

// Groups the NAL units of an Annex-B elementary stream into access units (H.264 7.4.1.2.3,
// H.265 7.4.2.4.4, simplified to what encoders emit) and converts each to length-prefixed NALs.
// Without `inBandParameterSets` the VPS/SPS/PPS units are left out, so a decoder depends on the
// codec private data alone.
std::vector<Frame> videoFrames(const Bytes& stream, VideoCodec codec, uint64_t frameMs,
                               bool inBandParameterSets = true) {
  const bool h264 = codec == VideoCodec::H264;
  std::vector<Frame> frames;
  Bytes au;
  bool auHasSlice = false, auKey = false;
  auto flush = [&] {
    if (!au.empty()) {
      Frame f;
      f.data = kvs::annexBToLengthPrefixed(au.data(), au.size());
      f.key = auKey;
      f.timecode = frames.size() * frameMs;
      frames.push_back(std::move(f));
    }
    au.clear();
    auHasSlice = auKey = false;
  };
  for (const auto& [nal, size] : kvs::splitAnnexB(stream.data(), stream.size())) {
    const unsigned type = h264 ? (nal[0] & 0x1Fu) : ((nal[0] >> 1) & 0x3Fu);
    const bool slice = h264 ? (type == 1 || type == 5) : type < 32;
    const size_t headerSize = h264 ? 1 : 2;
    const bool firstSliceOfPicture = slice && size > headerSize && (nal[headerSize] & 0x80) != 0;
    const bool prefix = h264 ? (type == 6 || type == 7 || type == 8)  // SEI, SPS, PPS
                             : (type == 32 || type == 33 || type == 34 || type == 39);
    const bool delimiter = h264 ? type == 9 : type == 35;
    const bool startsAu = delimiter || (prefix && auHasSlice);
    if (startsAu || (firstSliceOfPicture && auHasSlice)) flush();
    const bool parameterSet = h264 ? (type == 7 || type == 8) : (type >= 32 && type <= 34);
    if (parameterSet && !inBandParameterSets) continue;
    au.insert(au.end(), {0, 0, 0, 1});
    au.insert(au.end(), nal, nal + size);
    if (slice) {
      auHasSlice = true;
      auKey = auKey || (h264 ? type == 5 : (type >= 16 && type <= 21));
    }
  }
  flush();
  return frames;
}

// Raw AAC frames from an ADTS stream, timecodes at 1024 samples per frame.
std::vector<Frame> aacFrames(const Bytes& adts, uint64_t track, double rate) {
  std::vector<Frame> frames;
  for (size_t pos = 0; pos + 7 <= adts.size();) {
    EXPECT_EQ(adts[pos], 0xFF);
    const size_t headerSize = (adts[pos + 1] & 1) ? 7 : 9;
    const size_t length =
        size_t{adts[pos + 3] & 3u} << 11 | size_t{adts[pos + 4]} << 3 | adts[pos + 5] >> 5;
    if (length < headerSize || pos + length > adts.size()) break;
    Frame f;
    f.data.assign(adts.begin() + static_cast<long>(pos + headerSize),
                  adts.begin() + static_cast<long>(pos + length));
    f.track = track;
    f.timecode = static_cast<uint64_t>(static_cast<double>(frames.size()) * 1024 * 1000 / rate);
    f.key = true;
    frames.push_back(std::move(f));
    pos += length;
  }
  return frames;
}

// Header + clusters. Frames must be sorted by timecode; a cluster starts at every video key
// frame, or every `audioClusterMs` for audio-only streams.
Bytes buildFile(const MkvWriter& writer, const std::vector<Frame>& frames, uint64_t base,
                bool audioOnly = false, uint64_t audioClusterMs = 1000) {
  Bytes file = writer.streamHeader();
  bool open = false;
  uint64_t clusterStart = 0;
  for (const Frame& f : frames) {
    const bool videoKey = !audioOnly && f.track == 1 && f.key;
    const bool audioCut = audioOnly && (!open || f.timecode - clusterStart >= audioClusterMs);
    if (videoKey || audioCut) {
      clusterStart = f.timecode;
      const Bytes cluster = writer.clusterHeader(base + clusterStart);
      file.insert(file.end(), cluster.begin(), cluster.end());
      open = true;
    }
    if (!open) continue;  // frames before the first key frame are skipped, as the producer does
    uint8_t header[MkvWriter::kSimpleBlockHeaderSize];
    size_t len = 0;
    const auto relative = static_cast<int16_t>(f.timecode - clusterStart);
    MkvWriter::simpleBlockHeader(header, len, f.track, relative, f.key, f.data.size());
    file.insert(file.end(), header, header + len);
    file.insert(file.end(), f.data.begin(), f.data.end());
  }
  const Bytes eofr = MkvWriter::endOfFragmentTags();
  file.insert(file.end(), eofr.begin(), eofr.end());
  return file;
}

std::vector<Frame> merge(std::vector<Frame> a, const std::vector<Frame>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::stable_sort(a.begin(), a.end(),
                   [](const Frame& x, const Frame& y) { return x.timecode < y.timecode; });
  return a;
}

bool haveFfprobe() { return std::system("ffprobe -version > /dev/null 2>&1") == 0; }

// Runs ffprobe on the bytes; returns its JSON "streams" array; `errors` gets its stderr.
nlohmann::json ffprobe(const Bytes& file, const std::string& name, std::string& errors) {
  const std::string path =
      ::testing::TempDir() + "/kvs_mkv_test_" + std::to_string(getpid()) + "_" + name + ".mkv";
  const std::string errPath = path + ".err";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(file.data()),
              static_cast<std::streamsize>(file.size()));
  }
  const std::string command =
      "ffprobe -v error -count_frames -show_entries "
      "stream=codec_name,width,height,sample_rate,channels,nb_read_frames -of json '" + path +
      "' 2>'" + errPath + "'";
  std::string output;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[4096];
    size_t n = 0;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
    EXPECT_EQ(pclose(pipe), 0) << command;
  }
  std::ifstream err(errPath);
  errors.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  std::remove(errPath.c_str());
  const nlohmann::json j = nlohmann::json::parse(output, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << output;
  return j.is_discarded() ? nlohmann::json::array() : j.value("streams", nlohmann::json::array());
}

TEST(MkvFfprobe, H264TwoClusters) {
  if (!haveFfprobe()) GTEST_SKIP() << "ffprobe not installed";
  const Bytes stream = readFile("h264_320x240.h264");
  // CPD from the first key frame only, as the element does for byte-stream input.
  const Bytes avcc = kvs::codecPrivateFromAnnexB(VideoCodec::H264, stream.data(), 2000);
  const MkvWriter writer({videoTrack(avcc)}, 1000000, kUid);
  for (const bool inBand : {true, false}) {
    SCOPED_TRACE(inBand ? "parameter sets in band" : "parameter sets only in the avcC");
    const std::vector<Frame> frames = videoFrames(stream, VideoCodec::H264, 33, inBand);
    ASSERT_EQ(frames.size(), 60u);
    ASSERT_TRUE(frames[0].key);
    ASSERT_TRUE(frames[30].key);
    int keys = 0;
    for (const Frame& f : frames) keys += f.key ? 1 : 0;
    ASSERT_EQ(keys, 2);

    std::string errors;
    const nlohmann::json streams =
        ffprobe(buildFile(writer, frames, 1795624862718), "h264", errors);
    EXPECT_TRUE(errors.empty()) << errors.substr(0, 1000);
    ASSERT_EQ(streams.size(), 1u);
    EXPECT_EQ(streams[0].value("codec_name", ""), "h264");
    EXPECT_EQ(streams[0].value("width", 0), 320);
    EXPECT_EQ(streams[0].value("height", 0), 240);
    EXPECT_EQ(streams[0].value("nb_read_frames", ""), "60");
  }
}

TEST(MkvFfprobe, H265) {
  if (!haveFfprobe()) GTEST_SKIP() << "ffprobe not installed";
  const Bytes stream = readFile("h265_320x240.h265");
  const std::vector<Frame> frames = videoFrames(stream, VideoCodec::H265, 33, false);
  ASSERT_EQ(frames.size(), 30u);
  ASSERT_TRUE(frames[0].key);
  const Bytes hvcc = kvs::codecPrivateFromAnnexB(VideoCodec::H265, stream.data(), stream.size());
  const MkvWriter writer({videoTrack(hvcc, "V_MPEGH/ISO/HEVC")}, 1000000, kUid);
  std::string errors;
  const nlohmann::json streams = ffprobe(buildFile(writer, frames, 1700000000000), "h265", errors);
  EXPECT_TRUE(errors.empty()) << errors.substr(0, 1000);
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].value("codec_name", ""), "hevc");
  EXPECT_EQ(streams[0].value("width", 0), 320);
  EXPECT_EQ(streams[0].value("height", 0), 240);
  EXPECT_EQ(streams[0].value("nb_read_frames", ""), "30");
}

TEST(MkvFfprobe, H264WithAac) {
  if (!haveFfprobe()) GTEST_SKIP() << "ffprobe not installed";
  const Bytes stream = readFile("h264_320x240.h264");
  const std::vector<Frame> audio = aacFrames(readFile("aac_44100_2.adts"), 2, 44100);
  ASSERT_GE(audio.size(), 5u);
  const Bytes avcc = kvs::codecPrivateFromAnnexB(VideoCodec::H264, stream.data(), 2000);
  const MkvWriter writer({videoTrack(avcc), audioTrack(2, "A_AAC", {0x12, 0x10})}, 1000000, kUid);
  const std::vector<Frame> frames = merge(videoFrames(stream, VideoCodec::H264, 33), audio);
  std::string errors;
  const nlohmann::json streams = ffprobe(buildFile(writer, frames, 1700000000000), "av", errors);
  EXPECT_TRUE(errors.empty()) << errors.substr(0, 1000);
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_EQ(streams[0].value("codec_name", ""), "h264");
  EXPECT_EQ(streams[0].value("nb_read_frames", ""), "60");
  EXPECT_EQ(streams[1].value("codec_name", ""), "aac");
  EXPECT_EQ(streams[1].value("sample_rate", ""), "44100");
  EXPECT_EQ(streams[1].value("channels", 0), 2);
  EXPECT_EQ(streams[1].value("nb_read_frames", ""), std::to_string(audio.size()));
}

TEST(MkvFfprobe, G711AudioOnly) {
  if (!haveFfprobe()) GTEST_SKIP() << "ffprobe not installed";
  std::vector<Frame> frames;
  for (uint64_t i = 0; i < 50; ++i) {  // 50 x 20 ms of 8 kHz A-law = 2 clusters of 1 s
    Frame f;
    f.data.assign(160, static_cast<uint8_t>(0xD5 ^ i));
    f.timecode = i * 20;
    f.key = true;
    frames.push_back(std::move(f));
  }
  const MkvWriter writer({audioTrack(1, "A_MS/ACM", kvs::pcmCodecPrivate(true, 1, 8000))}, 1000000,
                         kUid);
  std::string errors;
  const nlohmann::json streams =
      ffprobe(buildFile(writer, frames, 1700000000000, true), "alaw", errors);
  EXPECT_TRUE(errors.empty()) << errors.substr(0, 1000);
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].value("codec_name", ""), "pcm_alaw");
  EXPECT_EQ(streams[0].value("sample_rate", ""), "8000");
  EXPECT_EQ(streams[0].value("channels", 0), 1);
}

}  // namespace
