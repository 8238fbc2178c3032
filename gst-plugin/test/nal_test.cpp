// Tests of kvs/nal.h against real encoder output in test/data, generated once with
// gst-launch-1.0 (x264enc defaults to High profile, no B-frames, AUDs; format=I420 is needed,
// otherwise x264enc negotiates 10-bit 4:4:4):
//   SRC="videotestsrc num-buffers=N ! video/x-raw,format=I420,width=W,height=H,framerate=30/1"
//   h264_320x240.h264      N=60  $SRC ! x264enc key-int-max=30 bitrate=128 ! <byte-stream>
//   h264_642x362.h264      N=2   $SRC ! x264enc ! <byte-stream>
//   h264_642x362_444.h264  N=2   same with format=Y444
//   h264_320x240_interlaced.h264  N=2  $SRC ! interlace field-pattern=1:1 ! x264enc interlaced=true
//   h265_320x240.h265      N=30  $SRC ! x265enc key-int-max=15 bitrate=128 option-string=bframes=0
//   h265_642x362.h265      N=2   $SRC ! x265enc
//   aac_44100_2.adts       audiotestsrc num-buffers=10 ! audio/x-raw,rate=44100,channels=2 !
//                          avenc_aac ! aacparse ! audio/mpeg,stream-format=adts
// where <byte-stream> = video/x-h264,stream-format=byte-stream (x-h265 for H.265) ! filesink.
#include "kvs/nal.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

namespace {

using Bytes = std::vector<uint8_t>;
using kvs::VideoCodec;

Bytes readFile(const std::string& name) {
  std::ifstream in(std::string(KVS_TEST_DATA_DIR) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Bytes toBytes(const std::pair<const uint8_t*, size_t>& nal) {
  return Bytes(nal.first, nal.first + nal.second);
}

// First NAL unit of the given type in an Annex-B buffer.
Bytes firstNal(const Bytes& stream, VideoCodec codec, unsigned type) {
  for (const auto& nal : kvs::splitAnnexB(stream.data(), stream.size())) {
    const uint8_t header = nal.first[0];
    const unsigned t = codec == VideoCodec::H264 ? (header & 0x1Fu) : ((header >> 1) & 0x3Fu);
    if (t == type) return toBytes(nal);
  }
  return {};
}

// Splits a buffer of 4-byte-length-prefixed NAL units; fails the test if it is malformed.
std::vector<Bytes> splitLengthPrefixed(const Bytes& data) {
  std::vector<Bytes> nals;
  size_t pos = 0;
  while (pos < data.size()) {
    EXPECT_LE(pos + 4, data.size());
    if (pos + 4 > data.size()) break;
    const size_t len = size_t{data[pos]} << 24 | size_t{data[pos + 1]} << 16 |
                       size_t{data[pos + 2]} << 8 | data[pos + 3];
    EXPECT_LE(pos + 4 + len, data.size());
    if (pos + 4 + len > data.size()) break;
    nals.emplace_back(data.begin() + static_cast<long>(pos + 4),
                      data.begin() + static_cast<long>(pos + 4 + len));
    pos += 4 + len;
  }
  return nals;
}

// Reads the parameter-set arrays of an hvcC: (type, units).
std::vector<std::pair<unsigned, std::vector<Bytes>>> hvccArrays(const Bytes& hvcc) {
  std::vector<std::pair<unsigned, std::vector<Bytes>>> arrays;
  size_t pos = 23;
  for (unsigned a = 0; a < hvcc[22]; ++a) {
    const unsigned type = hvcc.at(pos) & 0x3Fu;
    const unsigned count = unsigned{hvcc.at(pos + 1)} << 8 | hvcc.at(pos + 2);
    pos += 3;
    std::vector<Bytes> units;
    for (unsigned i = 0; i < count; ++i) {
      const size_t len = size_t{hvcc.at(pos)} << 8 | hvcc.at(pos + 1);
      units.emplace_back(hvcc.begin() + static_cast<long>(pos + 2),
                         hvcc.begin() + static_cast<long>(pos + 2 + len));
      pos += 2 + len;
    }
    arrays.emplace_back(type, units);
  }
  EXPECT_EQ(pos, hvcc.size());
  return arrays;
}

TEST(Nal, SplitAnnexBHandlesBothStartCodesAndTrailingZeros) {
  const Bytes data = {0xAA, 0xBB,                    // junk before the first start code
                      0, 0, 0, 1, 0x67, 0x42, 0x00,  // SPS + trailing_zero_8bits
                      0, 0, 1, 0x68, 0xCE,           // 3-byte start code
                      0, 0, 0, 1,                    // empty NAL unit
                      0, 0, 0, 1, 0x65, 0x88, 0x84, 0, 0};
  const auto nals = kvs::splitAnnexB(data.data(), data.size());
  ASSERT_EQ(nals.size(), 3u);
  EXPECT_EQ(toBytes(nals[0]), (Bytes{0x67, 0x42}));
  EXPECT_EQ(toBytes(nals[1]), (Bytes{0x68, 0xCE}));
  EXPECT_EQ(toBytes(nals[2]), (Bytes{0x65, 0x88, 0x84}));
  EXPECT_TRUE(kvs::splitAnnexB(nullptr, 0).empty());
  const Bytes noStartCode = {1, 2, 3, 4, 5};
  EXPECT_TRUE(kvs::splitAnnexB(noStartCode.data(), noStartCode.size()).empty());
}

TEST(Nal, AnnexBToLengthPrefixedRoundTripsARealStream) {
  const Bytes stream = readFile("h264_320x240.h264");
  const auto nals = kvs::splitAnnexB(stream.data(), stream.size());
  ASSERT_GT(nals.size(), 60u);  // AUD + slices for 60 frames, plus SPS/PPS/SEI
  const Bytes avcc = kvs::annexBToLengthPrefixed(stream.data(), stream.size());
  const std::vector<Bytes> back = splitLengthPrefixed(avcc);
  ASSERT_EQ(back.size(), nals.size());
  for (size_t i = 0; i < nals.size(); ++i) EXPECT_EQ(back[i], toBytes(nals[i])) << i;

  // Rebuilding Annex-B with 4-byte start codes reproduces the same NAL units again.
  Bytes annexB;
  for (const Bytes& nal : back) {
    annexB.insert(annexB.end(), {0, 0, 0, 1});
    annexB.insert(annexB.end(), nal.begin(), nal.end());
  }
  EXPECT_EQ(kvs::annexBToLengthPrefixed(annexB.data(), annexB.size()), avcc);
  EXPECT_FALSE(kvs::isAnnexB(avcc.data(), avcc.size()));
  EXPECT_TRUE(kvs::isAnnexB(stream.data(), stream.size()));
}

TEST(Nal, AnnexBToLengthPrefixedKeepsEveryNalUnit) {
  const Bytes au = {0, 0, 0, 1, 0x09, 0xF0,        // AUD
                    0, 0, 1, 0x67, 0x64, 0x00, 0x0D,  // SPS
                    0, 0, 1, 0x68, 0xEB,              // PPS
                    0, 0, 0, 1, 0x65, 0x88};          // IDR slice
  const Bytes expected = {0, 0, 0, 2, 0x09, 0xF0, 0, 0, 0, 4, 0x67, 0x64, 0x00, 0x0D,
                          0, 0, 0, 2, 0x68, 0xEB, 0, 0, 0, 2, 0x65, 0x88};
  EXPECT_EQ(kvs::annexBToLengthPrefixed(au.data(), au.size()), expected);
  EXPECT_TRUE(kvs::annexBToLengthPrefixed(au.data(), 3).empty());
}

TEST(Nal, IsAnnexBTellsStartCodesFromLengthPrefixes) {
  const Bytes four = {0, 0, 0, 1, 0x65, 0x88};
  const Bytes three = {0, 0, 1, 0x65, 0x88};
  EXPECT_TRUE(kvs::isAnnexB(four.data(), four.size()));
  EXPECT_TRUE(kvs::isAnnexB(three.data(), three.size()));

  // A length-prefixed frame whose first NAL unit is 300 bytes starts with 00 00 01 2C.
  Bytes prefixed = {0, 0, 1, 0x2C};
  prefixed.resize(4 + 300, 0x41);
  EXPECT_FALSE(kvs::isAnnexB(prefixed.data(), prefixed.size()));
  const Bytes small = {0, 0, 0, 2, 0x65, 0x88};
  EXPECT_FALSE(kvs::isAnnexB(small.data(), small.size()));
  EXPECT_FALSE(kvs::isAnnexB(four.data(), 2));
  EXPECT_FALSE(kvs::isAnnexB(nullptr, 0));
}

TEST(Nal, AvccFromX264KeyFrame) {
  const Bytes stream = readFile("h264_320x240.h264");
  const Bytes sps = firstNal(stream, VideoCodec::H264, 7);
  const Bytes pps = firstNal(stream, VideoCodec::H264, 8);
  ASSERT_GE(sps.size(), 4u);
  ASSERT_FALSE(pps.empty());
  ASSERT_EQ(sps[1], 100);  // x264 picks the High profile

  const Bytes avcc = kvs::codecPrivateFromAnnexB(VideoCodec::H264, stream.data(), stream.size());
  Bytes expected = {1, sps[1], sps[2], sps[3], 0xFF, 0xE1, static_cast<uint8_t>(sps.size() >> 8),
                    static_cast<uint8_t>(sps.size())};
  expected.insert(expected.end(), sps.begin(), sps.end());
  expected.insert(expected.end(),
                  {1, static_cast<uint8_t>(pps.size() >> 8), static_cast<uint8_t>(pps.size())});
  expected.insert(expected.end(), pps.begin(), pps.end());
  // High-profile trailer: 4:2:0 (chroma_format_idc 1), 8-bit luma and chroma, no SPS extensions.
  expected.insert(expected.end(), {0xFD, 0xF8, 0xF8, 0x00});
  EXPECT_EQ(avcc, expected);

  uint32_t width = 0, height = 0;
  ASSERT_TRUE(kvs::dimensionsFromCodecPrivate(VideoCodec::H264, avcc, width, height));
  EXPECT_EQ(width, 320u);
  EXPECT_EQ(height, 240u);
}

TEST(Nal, H264DimensionsWithCroppingInterlacingAnd444) {
  struct Case {
    const char* file;
    uint32_t width, height;
    uint8_t chromaByte;
  };
  // 4:2:0 cropped by 14 x 6; High 4:4:4 (crop unit 1); interlaced (frame_mbs_only_flag 0).
  for (const Case& c : {Case{"h264_642x362.h264", 642, 362, 0xFD},
                        Case{"h264_642x362_444.h264", 642, 362, 0xFF},
                        Case{"h264_320x240_interlaced.h264", 320, 240, 0xFD}}) {
    SCOPED_TRACE(c.file);
    const Bytes stream = readFile(c.file);
    const Bytes avcc = kvs::codecPrivateFromAnnexB(VideoCodec::H264, stream.data(), stream.size());
    ASSERT_GT(avcc.size(), 10u);
    EXPECT_EQ(avcc[avcc.size() - 4], c.chromaByte);
    uint32_t width = 0, height = 0;
    ASSERT_TRUE(kvs::dimensionsFromCodecPrivate(VideoCodec::H264, avcc, width, height));
    EXPECT_EQ(width, c.width);
    EXPECT_EQ(height, c.height);
    // The Annex-B stream itself is accepted as codec data too.
    width = height = 0;
    ASSERT_TRUE(kvs::dimensionsFromCodecPrivate(VideoCodec::H264, stream, width, height));
    EXPECT_EQ(width, c.width);
    EXPECT_EQ(height, c.height);
  }
}

// Writes SPS fields bit by bit (x264 never puts scaling lists in the SPS, so those paths are
// covered with hand-made parameter sets).
class BitWriter {
 public:
  void u(int n, uint32_t v) {
    for (int i = n - 1; i >= 0; --i) bits_.push_back(((v >> i) & 1u) != 0);
  }
  void ue(uint32_t v) {
    const uint64_t x = uint64_t{v} + 1;
    int len = 0;
    while ((x >> len) > 1) ++len;
    u(len, 0);
    for (int i = len; i >= 0; --i) bits_.push_back(((x >> i) & 1u) != 0);
  }
  void se(int32_t v) {
    ue(v > 0 ? static_cast<uint32_t>(2 * v - 1) : static_cast<uint32_t>(-2 * v));
  }
  // Annex-B NAL unit: start code, header, payload + rbsp_stop_one_bit, emulation prevention.
  Bytes annexB(uint8_t header) {
    u(1, 1);
    while (bits_.size() % 8) bits_.push_back(false);
    Bytes out = {0, 0, 0, 1, header};
    int zeros = 0;
    for (size_t i = 0; i < bits_.size(); i += 8) {
      uint8_t byte = 0;
      for (size_t j = 0; j < 8; ++j) {
        byte = static_cast<uint8_t>(byte << 1 | (bits_[i + j] ? 1 : 0));
      }
      if (zeros >= 2 && byte <= 3) {
        out.push_back(3);
        zeros = 0;
      }
      out.push_back(byte);
      zeros = byte == 0 ? zeros + 1 : 0;
    }
    return out;
  }

 private:
  std::vector<bool> bits_;
};

struct SpsFields {
  uint8_t profile = 100;
  uint32_t chromaFormat = 1;
  uint32_t separateColourPlane = 0;
  bool scalingLists = false;
  uint32_t pocType = 0;
  uint32_t frameMbsOnly = 1;
  uint32_t widthMbs = 0, heightMapUnits = 0;
  uint32_t cropLeft = 0, cropRight = 0, cropTop = 0, cropBottom = 0;
};

// An Annex-B SPS + PPS pair with the given fields.
Bytes syntheticH264(const SpsFields& f) {
  BitWriter w;
  w.u(8, f.profile);
  w.u(8, 0);   // constraint flags
  w.u(8, 40);  // level 4.0
  w.ue(0);     // seq_parameter_set_id
  if (f.profile >= 100) {
    w.ue(f.chromaFormat);
    if (f.chromaFormat == 3) w.u(1, f.separateColourPlane);
    w.ue(0);  // bit_depth_luma_minus8
    w.ue(0);  // bit_depth_chroma_minus8
    w.u(1, 0);
    w.u(1, f.scalingLists ? 1 : 0);
    if (f.scalingLists) {
      const int lists = f.chromaFormat != 3 ? 8 : 12;
      for (int i = 0; i < lists; ++i) {
        const bool present = i == 0 || i == 2 || i == 6 || i == 9;
        w.u(1, present ? 1 : 0);
        if (!present) continue;
        if (i == 2) {
          w.se(-8);  // nextScale 0 at j = 0: use the default list, nothing more is coded
          continue;
        }
        const int count = i < 6 ? 16 : 64;
        for (int j = 0; j < count; ++j) w.se(j % 2 ? 3 : -2);
      }
    }
  }
  w.ue(0);  // log2_max_frame_num_minus4
  w.ue(f.pocType);
  if (f.pocType == 0) {
    w.ue(2);
  } else if (f.pocType == 1) {
    w.u(1, 0);
    w.se(-5);
    w.se(7);
    w.ue(3);
    w.se(1);
    w.se(-1);
    w.se(100);
  }
  w.ue(4);    // max_num_ref_frames
  w.u(1, 0);  // gaps
  w.ue(f.widthMbs - 1);
  w.ue(f.heightMapUnits - 1);
  w.u(1, f.frameMbsOnly);
  if (!f.frameMbsOnly) w.u(1, 1);
  w.u(1, 1);  // direct_8x8_inference_flag
  const bool crop = f.cropLeft || f.cropRight || f.cropTop || f.cropBottom;
  w.u(1, crop ? 1 : 0);
  if (crop) {
    w.ue(f.cropLeft);
    w.ue(f.cropRight);
    w.ue(f.cropTop);
    w.ue(f.cropBottom);
  }
  w.u(1, 0);  // vui_parameters_present_flag
  Bytes out = w.annexB(0x67);
  const Bytes pps = {0, 0, 0, 1, 0x68, 0xEE, 0x3C, 0x80};
  out.insert(out.end(), pps.begin(), pps.end());
  return out;
}

TEST(Nal, H264SpsVariants) {
  struct Case {
    const char* what;
    SpsFields fields;
    uint32_t width, height;
  };
  std::vector<Case> cases;
  SpsFields f;
  f.scalingLists = true;
  f.widthMbs = 41;  // 656 -> crop 7 chroma samples = 14 luma
  f.heightMapUnits = 23;  // 368 -> crop 3 = 6 lines
  f.cropRight = 7;
  f.cropBottom = 3;
  cases.push_back({"4:2:0 with scaling lists", f, 642, 362});
  f = SpsFields{};
  f.profile = 66;
  f.pocType = 1;
  f.widthMbs = 20;
  f.heightMapUnits = 15;
  cases.push_back({"baseline, POC type 1", f, 320, 240});
  f = SpsFields{};
  f.frameMbsOnly = 0;
  f.widthMbs = 120;
  f.heightMapUnits = 34;  // 34 field map units = 1088 lines; crop unit 4
  f.cropBottom = 2;
  cases.push_back({"interlaced 1080", f, 1920, 1080});
  f = SpsFields{};
  f.profile = 244;
  f.chromaFormat = 3;
  f.separateColourPlane = 1;  // ChromaArrayType 0: crop unit 1 x 1
  f.scalingLists = true;      // 12 lists for 4:4:4
  f.widthMbs = 41;
  f.heightMapUnits = 23;
  f.cropLeft = 4;
  f.cropRight = 10;
  f.cropTop = 6;
  cases.push_back({"4:4:4 separate planes with 12 scaling lists", f, 642, 362});
  f = SpsFields{};
  f.profile = 122;
  f.chromaFormat = 2;  // 4:2:2: crop units 2 x 1
  f.widthMbs = 41;
  f.heightMapUnits = 23;
  f.cropRight = 7;
  f.cropBottom = 6;
  cases.push_back({"4:2:2", f, 642, 362});

  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const Bytes stream = syntheticH264(c.fields);
    const Bytes avcc = kvs::codecPrivateFromAnnexB(VideoCodec::H264, stream.data(), stream.size());
    ASSERT_FALSE(avcc.empty());
    uint32_t width = 0, height = 0;
    ASSERT_TRUE(kvs::dimensionsFromCodecPrivate(VideoCodec::H264, avcc, width, height));
    EXPECT_EQ(width, c.width);
    EXPECT_EQ(height, c.height);
    // header (6) + PPS count (1) + two 2-byte lengths - two 4-byte start codes = 3, plus the
    // 4-byte trailer for high profiles.
    EXPECT_EQ(avcc.size() - stream.size(), c.fields.profile == 66 ? 3u : 7u);
  }

  // A crop that eats the whole picture is rejected.
  f = SpsFields{};
  f.widthMbs = 1;
  f.heightMapUnits = 1;
  f.cropRight = 8;
  const Bytes bad = syntheticH264(f);
  EXPECT_TRUE(kvs::codecPrivateFromAnnexB(VideoCodec::H264, bad.data(), bad.size()).empty());
}

TEST(Nal, AvccNeedsSpsAndPps) {
  const Bytes stream = readFile("h264_320x240.h264");
  const Bytes sps = firstNal(stream, VideoCodec::H264, 7);
  Bytes onlySps = {0, 0, 0, 1};
  onlySps.insert(onlySps.end(), sps.begin(), sps.end());
  EXPECT_TRUE(
      kvs::codecPrivateFromAnnexB(VideoCodec::H264, onlySps.data(), onlySps.size()).empty());
  EXPECT_TRUE(kvs::codecPrivateFromAnnexB(VideoCodec::H264, nullptr, 0).empty());
}

// Removes emulation prevention bytes.
Bytes rbsp(const Bytes& nal) {
  Bytes out;
  int zeros = 0;
  for (uint8_t b : nal) {
    if (zeros >= 2 && b == 3) {
      zeros = 0;
      continue;
    }
    zeros = b == 0 ? zeros + 1 : 0;
    out.push_back(b);
  }
  return out;
}

TEST(Nal, HvccFromX265Stream) {
  for (const auto& [file, w, h] : {std::tuple{"h265_320x240.h265", 320u, 240u},
                                  std::tuple{"h265_642x362.h265", 642u, 362u}}) {
    SCOPED_TRACE(file);
    const Bytes stream = readFile(file);
    const Bytes vps = firstNal(stream, VideoCodec::H265, 32);
    const Bytes sps = firstNal(stream, VideoCodec::H265, 33);
    const Bytes pps = firstNal(stream, VideoCodec::H265, 34);
    ASSERT_FALSE(vps.empty());
    ASSERT_GT(sps.size(), 15u);
    ASSERT_FALSE(pps.empty());

    const Bytes hvcc = kvs::codecPrivateFromAnnexB(VideoCodec::H265, stream.data(), stream.size());
    ASSERT_GT(hvcc.size(), 23u);
    EXPECT_EQ(hvcc[0], 1);
    EXPECT_EQ(hvcc[1] & 0x1F, 1) << "general_profile_idc: Main";
    // profile/tier/level: the 12 RBSP bytes after the SPS's 2-byte NAL header and its first byte
    // (x265's SPS has emulation prevention bytes inside them, which must not be copied).
    const Bytes spsRbsp = rbsp(sps);
    EXPECT_NE(spsRbsp.size(), sps.size());
    EXPECT_EQ(Bytes(hvcc.begin() + 1, hvcc.begin() + 13),
              Bytes(spsRbsp.begin() + 3, spsRbsp.begin() + 15));
    EXPECT_EQ(Bytes(hvcc.begin() + 13, hvcc.begin() + 16), (Bytes{0xF0, 0x00, 0xFC}));
    EXPECT_EQ(hvcc[16], 0xFD) << "4:2:0";
    EXPECT_EQ(hvcc[17], 0xF8) << "8-bit luma";
    EXPECT_EQ(hvcc[18], 0xF8) << "8-bit chroma";
    EXPECT_EQ(hvcc[21], 0x0F) << "1 temporal layer, nested, 4-byte lengths";
    EXPECT_EQ(hvcc[22], 3);
    const auto arrays = hvccArrays(hvcc);
    ASSERT_EQ(arrays.size(), 3u);
    EXPECT_EQ(arrays[0].first, 32u);
    EXPECT_EQ(arrays[1].first, 33u);
    EXPECT_EQ(arrays[2].first, 34u);
    EXPECT_EQ(arrays[0].second, std::vector<Bytes>{vps});
    EXPECT_EQ(arrays[1].second, std::vector<Bytes>{sps});
    EXPECT_EQ(arrays[2].second, std::vector<Bytes>{pps});

    uint32_t width = 0, height = 0;
    ASSERT_TRUE(kvs::dimensionsFromCodecPrivate(VideoCodec::H265, hvcc, width, height));
    EXPECT_EQ(width, w);
    EXPECT_EQ(height, h);
    width = height = 0;
    ASSERT_TRUE(kvs::dimensionsFromCodecPrivate(VideoCodec::H265, stream, width, height));
    EXPECT_EQ(width, w);
    EXPECT_EQ(height, h);
  }
}

TEST(Nal, HvccFromFirstKeyFrameOnly) {
  const Bytes stream = readFile("h265_320x240.h265");
  // The first access unit: everything up to the end of the first IRAP slice.
  size_t end = 0;
  for (const auto& nal : kvs::splitAnnexB(stream.data(), stream.size())) {
    const unsigned type = (nal.first[0] >> 1) & 0x3Fu;
    if (type >= 16 && type <= 21) {
      end = static_cast<size_t>(nal.first - stream.data()) + nal.second;
      break;
    }
  }
  ASSERT_GT(end, 0u);
  const Bytes hvcc = kvs::codecPrivateFromAnnexB(VideoCodec::H265, stream.data(), end);
  EXPECT_EQ(hvcc, kvs::codecPrivateFromAnnexB(VideoCodec::H265, stream.data(), stream.size()));
  // Without the PPS (cut right after its first byte, which leaves no NAL unit) there is no hvcC.
  for (const auto& nal : kvs::splitAnnexB(stream.data(), stream.size())) {
    if (((nal.first[0] >> 1) & 0x3Fu) == 34) {
      const auto cut = static_cast<size_t>(nal.first - stream.data());
      EXPECT_TRUE(kvs::codecPrivateFromAnnexB(VideoCodec::H265, stream.data(), cut).empty());
      break;
    }
  }
}

TEST(Nal, BrokenCodecDataIsRejectedWithoutCrashing) {
  uint32_t width = 0, height = 0;
  EXPECT_FALSE(kvs::dimensionsFromCodecPrivate(VideoCodec::H264, {}, width, height));
  EXPECT_FALSE(kvs::dimensionsFromCodecPrivate(VideoCodec::H265, {1, 2, 3}, width, height));
  const Bytes truncatedSps = {1, 0x64, 0, 0x0D, 0xFF, 0xE1, 0, 50};
  EXPECT_FALSE(kvs::dimensionsFromCodecPrivate(VideoCodec::H264, truncatedSps, width, height));

  // Every truncation of real avcC / hvcC records: no crash, no out-of-bounds read (ASan).
  for (const auto& [file, codec] : {std::pair{"h264_642x362.h264", VideoCodec::H264},
                                    std::pair{"h265_642x362.h265", VideoCodec::H265}}) {
    const Bytes stream = readFile(file);
    const Bytes cpd = kvs::codecPrivateFromAnnexB(codec, stream.data(), stream.size());
    ASSERT_FALSE(cpd.empty());
    for (size_t n = 0; n < cpd.size(); ++n) {
      const Bytes truncated(cpd.begin(), cpd.begin() + static_cast<long>(n));
      (void)kvs::dimensionsFromCodecPrivate(codec, truncated, width, height);
    }
    // Same for every truncation of the stream given to the builder.
    for (size_t n = 0; n < 200; ++n) {
      (void)kvs::codecPrivateFromAnnexB(codec, stream.data(), n);
    }
  }
}

TEST(Nal, AacAudioSpecificConfig) {
  double rate = 0;
  uint32_t channels = 0;
  // avenc_aac codec_data for 44100 Hz stereo and 48000 Hz mono (AAC-LC + SBR sync extension).
  ASSERT_TRUE(kvs::aacConfig({0x12, 0x10, 0x56, 0xE5, 0x00}, rate, channels));
  EXPECT_EQ(rate, 44100.0);
  EXPECT_EQ(channels, 2u);
  ASSERT_TRUE(kvs::aacConfig({0x11, 0x88, 0x56, 0xE5, 0x00}, rate, channels));
  EXPECT_EQ(rate, 48000.0);
  EXPECT_EQ(channels, 1u);
  ASSERT_TRUE(kvs::aacConfig({0x11, 0x90}, rate, channels));  // 48000, stereo, 2 bytes only
  EXPECT_EQ(rate, 48000.0);
  EXPECT_EQ(channels, 2u);
  ASSERT_TRUE(kvs::aacConfig({0x14, 0x08}, rate, channels));  // 16000, mono
  EXPECT_EQ(rate, 16000.0);
  ASSERT_TRUE(kvs::aacConfig({0x12, 0x38}, rate, channels));  // 44100, 7.1 (config 7)
  EXPECT_EQ(channels, 8u);

  // Explicit frequency: object type 2, index 15, 24-bit rate 37800, channel config 2:
  // 00010 1111 000000001001001110101000 0010
  ASSERT_TRUE(kvs::aacConfig({0x17, 0x80, 0x49, 0xD4, 0x10}, rate, channels));
  EXPECT_EQ(rate, 37800.0);
  EXPECT_EQ(channels, 2u);
  // Escaped object type 31 + 6 bits (ext 0 = type 32), index 3, channel config 1:
  // 11111 000000 0011 0001
  ASSERT_TRUE(kvs::aacConfig({0xF8, 0x06, 0x20}, rate, channels));
  EXPECT_EQ(rate, 48000.0);
  EXPECT_EQ(channels, 1u);

  EXPECT_FALSE(kvs::aacConfig({}, rate, channels));
  EXPECT_FALSE(kvs::aacConfig({0x12}, rate, channels));
  EXPECT_FALSE(kvs::aacConfig({0x16, 0x90}, rate, channels));  // reserved index 13
  EXPECT_FALSE(kvs::aacConfig({0x12, 0x00}, rate, channels));  // channel config 0 (PCE)
}

TEST(Nal, PcmCodecPrivateMatchesTheAwsLayout) {
  EXPECT_EQ(kvs::pcmCodecPrivate(true, 1, 8000),
            (Bytes{0x06, 0x00, 0x01, 0x00, 0x40, 0x1F, 0x00, 0x00, 0xE8, 0x03, 0x00, 0x00, 0x01,
                   0x00, 0x00, 0x00, 0x00, 0x00}));
  EXPECT_EQ(kvs::pcmCodecPrivate(false, 2, 16000),
            (Bytes{0x07, 0x00, 0x02, 0x00, 0x80, 0x3E, 0x00, 0x00, 0xA0, 0x0F, 0x00, 0x00, 0x02,
                   0x00, 0x00, 0x00, 0x00, 0x00}));
}

}  // namespace
