#include "kvs/nal.h"

#include <array>
#include <cstring>
#include <optional>

namespace kvs {

namespace {

// ---- Annex-B scanning -----------------------------------------------------------------------

// Finds the next 00 00 01 at or after `from`; returns `size` if there is none.
size_t findStartCode(const uint8_t* data, size_t size, size_t from) {
  for (size_t i = from; i + 2 < size; ++i) {
    if (data[i + 2] > 1) {
      i += 2;  // data[i + 2] > 1 rules out a start code at i, i + 1 and i + 2
    } else if (data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1) {
      return i;
    }
  }
  return size;
}

void putBe16(std::vector<uint8_t>& out, size_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void putBe32(std::vector<uint8_t>& out, size_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

uint32_t readBe16(const uint8_t* p) { return static_cast<uint32_t>(p[0] << 8 | p[1]); }

uint32_t readBe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | static_cast<uint32_t>(p[3]);
}

// True if the buffer is a sequence of 4-byte-length-prefixed, non-empty units covering it exactly.
bool coversAsLengthPrefixed(const uint8_t* data, size_t size) {
  size_t pos = 0;
  while (pos + 4 <= size) {
    const size_t len = readBe32(data + pos);
    if (len == 0 || len > size - pos - 4) return false;
    pos += 4 + len;
  }
  return pos == size;
}

// ---- RBSP bit reader --------------------------------------------------------------------------

// Removes emulation prevention bytes (the 03 in 00 00 03).
std::vector<uint8_t> toRbsp(const uint8_t* nal, size_t size) {
  std::vector<uint8_t> rbsp;
  rbsp.reserve(size);
  int zeros = 0;
  for (size_t i = 0; i < size; ++i) {
    if (zeros >= 2 && nal[i] == 3) {
      zeros = 0;
      continue;
    }
    zeros = nal[i] == 0 ? zeros + 1 : 0;
    rbsp.push_back(nal[i]);
  }
  return rbsp;
}

// MSB-first bit reader. Reading past the end or an exp-Golomb code longer than 32 bits sets
// failed() and yields zeros, so parsers can check once at the end.
class BitReader {
 public:
  explicit BitReader(const std::vector<uint8_t>& data, size_t startByte = 0)
      : data_(data), pos_(startByte * 8) {}

  uint32_t bit() {
    if (pos_ >= data_.size() * 8) {
      failed_ = true;
      return 0;
    }
    const uint32_t b = (data_[pos_ / 8] >> (7 - pos_ % 8)) & 1u;
    ++pos_;
    return b;
  }
  uint32_t bits(int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 1) | bit();
    return v;
  }
  void skip(size_t n) {
    for (size_t i = 0; i < n; ++i) bit();
  }
  uint32_t ue() {
    int leadingZeros = 0;
    while (bit() == 0) {
      if (failed_ || ++leadingZeros > 31) {
        failed_ = true;
        return 0;
      }
    }
    const uint64_t value = (uint64_t{1} << leadingZeros) - 1 + bits(leadingZeros);
    return static_cast<uint32_t>(value);
  }
  int64_t se() {
    const uint32_t k = ue();
    return (k & 1u) ? static_cast<int64_t>((k + uint64_t{1}) / 2) : -static_cast<int64_t>(k / 2);
  }
  bool failed() const { return failed_; }

 private:
  const std::vector<uint8_t>& data_;
  size_t pos_;
  bool failed_ = false;
};

// ---- SPS parsing ------------------------------------------------------------------------------

struct SpsInfo {
  uint32_t width = 0, height = 0;
  uint32_t chromaFormat = 1, bitDepthLumaMinus8 = 0, bitDepthChromaMinus8 = 0;
  // H.265 only:
  uint32_t maxSubLayersMinus1 = 0, temporalIdNesting = 0;
  std::array<uint8_t, 12> profileTierLevel{};  // general_profile_space .. general_level_idc
};

bool isH264HighProfile(uint32_t profileIdc) {
  switch (profileIdc) {
    case 100: case 110: case 122: case 244: case 44: case 83: case 86: case 118:
    case 128: case 138: case 139: case 134: case 135:
      return true;
    default:
      return false;
  }
}

// Crops `full` by `units` * (a + b); fails if the crop is not smaller than the picture.
bool cropped(uint64_t full, uint64_t units, uint64_t a, uint64_t b, uint32_t& out) {
  const uint64_t crop = units * (a + b);
  if (full == 0 || crop >= full || full > 0xFFFFFFFFu) return false;
  out = static_cast<uint32_t>(full - crop);
  return true;
}

// H.264 seq_parameter_set_rbsp (ITU-T H.264 7.3.2.1.1), up to frame cropping.
std::optional<SpsInfo> parseH264Sps(const uint8_t* nal, size_t size) {
  if (size < 4 || (nal[0] & 0x1F) != 7) return std::nullopt;
  const std::vector<uint8_t> rbsp = toRbsp(nal, size);
  BitReader r(rbsp, 1);
  SpsInfo sps;
  const uint32_t profileIdc = r.bits(8);
  r.skip(16);  // constraint flags, level_idc
  r.ue();      // seq_parameter_set_id
  uint32_t separateColourPlane = 0;
  if (isH264HighProfile(profileIdc)) {
    sps.chromaFormat = r.ue();
    if (sps.chromaFormat > 3) return std::nullopt;
    if (sps.chromaFormat == 3) separateColourPlane = r.bit();
    sps.bitDepthLumaMinus8 = r.ue();
    sps.bitDepthChromaMinus8 = r.ue();
    r.bit();  // qpprime_y_zero_transform_bypass_flag
    if (r.bit()) {  // seq_scaling_matrix_present_flag
      const int lists = sps.chromaFormat != 3 ? 8 : 12;
      for (int i = 0; i < lists && !r.failed(); ++i) {
        if (!r.bit()) continue;  // seq_scaling_list_present_flag[i]
        const int count = i < 6 ? 16 : 64;
        int64_t last = 8, next = 8;
        for (int j = 0; j < count && next != 0 && !r.failed(); ++j) {
          next = (last + r.se() + 256) % 256;
          last = next == 0 ? last : next;
        }
      }
    }
  }
  r.ue();  // log2_max_frame_num_minus4
  const uint32_t pocType = r.ue();
  if (pocType == 0) {
    r.ue();  // log2_max_pic_order_cnt_lsb_minus4
  } else if (pocType == 1) {
    r.bit();  // delta_pic_order_always_zero_flag
    r.se();   // offset_for_non_ref_pic
    r.se();   // offset_for_top_to_bottom_field
    const uint32_t cycle = r.ue();
    if (cycle > 255) return std::nullopt;
    for (uint32_t i = 0; i < cycle && !r.failed(); ++i) r.se();
  } else if (pocType > 2) {
    return std::nullopt;
  }
  r.ue();   // max_num_ref_frames
  r.bit();  // gaps_in_frame_num_value_allowed_flag
  const uint64_t widthMbs = uint64_t{r.ue()} + 1;
  const uint64_t heightMapUnits = uint64_t{r.ue()} + 1;
  const uint32_t frameMbsOnly = r.bit();
  if (!frameMbsOnly) r.bit();  // mb_adaptive_frame_field_flag
  r.bit();                     // direct_8x8_inference_flag
  uint64_t cropLeft = 0, cropRight = 0, cropTop = 0, cropBottom = 0;
  if (r.bit()) {  // frame_cropping_flag
    cropLeft = r.ue();
    cropRight = r.ue();
    cropTop = r.ue();
    cropBottom = r.ue();
  }
  if (r.failed()) return std::nullopt;

  // Crop units (H.264 7.4.2.1.1, equations 7-19 .. 7-22).
  const uint32_t chromaArrayType = separateColourPlane ? 0 : sps.chromaFormat;
  uint64_t cropUnitX = 1, cropUnitY = 2 - frameMbsOnly;
  if (chromaArrayType != 0) {
    const uint64_t subWidthC = chromaArrayType == 3 ? 1 : 2;
    const uint64_t subHeightC = chromaArrayType == 1 ? 2 : 1;
    cropUnitX = subWidthC;
    cropUnitY = subHeightC * (2 - frameMbsOnly);
  }
  const uint64_t fullWidth = widthMbs * 16;
  const uint64_t fullHeight = (2 - frameMbsOnly) * heightMapUnits * 16;
  if (!cropped(fullWidth, cropUnitX, cropLeft, cropRight, sps.width) ||
      !cropped(fullHeight, cropUnitY, cropTop, cropBottom, sps.height)) {
    return std::nullopt;
  }
  return sps;
}

// H.265 seq_parameter_set_rbsp (ITU-T H.265 7.3.2.2.1), up to the bit depths.
std::optional<SpsInfo> parseH265Sps(const uint8_t* nal, size_t size) {
  if (size < 16 || ((nal[0] >> 1) & 0x3F) != 33) return std::nullopt;
  const std::vector<uint8_t> rbsp = toRbsp(nal, size);
  if (rbsp.size() < 15) return std::nullopt;
  SpsInfo sps;
  BitReader r(rbsp, 2);
  r.bits(4);  // sps_video_parameter_set_id
  sps.maxSubLayersMinus1 = r.bits(3);
  sps.temporalIdNesting = r.bit();
  // profile_tier_level(1, sps_max_sub_layers_minus1): the general part is 12 whole bytes.
  for (size_t i = 0; i < sps.profileTierLevel.size(); ++i) sps.profileTierLevel[i] = rbsp[3 + i];
  r.skip(96);
  std::array<uint32_t, 8> profilePresent{}, levelPresent{};
  for (uint32_t i = 0; i < sps.maxSubLayersMinus1; ++i) {
    profilePresent[i] = r.bit();
    levelPresent[i] = r.bit();
  }
  if (sps.maxSubLayersMinus1 > 0) {
    for (uint32_t i = sps.maxSubLayersMinus1; i < 8; ++i) r.skip(2);  // reserved_zero_2bits
  }
  for (uint32_t i = 0; i < sps.maxSubLayersMinus1; ++i) {
    if (profilePresent[i]) r.skip(88);
    if (levelPresent[i]) r.skip(8);
  }
  r.ue();  // sps_seq_parameter_set_id
  sps.chromaFormat = r.ue();
  if (sps.chromaFormat > 3) return std::nullopt;
  uint32_t separateColourPlane = 0;
  if (sps.chromaFormat == 3) separateColourPlane = r.bit();
  const uint64_t width = r.ue();
  const uint64_t height = r.ue();
  uint64_t left = 0, right = 0, top = 0, bottom = 0;
  if (r.bit()) {  // conformance_window_flag
    left = r.ue();
    right = r.ue();
    top = r.ue();
    bottom = r.ue();
  }
  sps.bitDepthLumaMinus8 = r.ue();
  sps.bitDepthChromaMinus8 = r.ue();
  if (r.failed()) return std::nullopt;

  // Conformance window units (H.265 Table 6-1; ChromaArrayType 0 uses 1x1).
  const uint32_t chromaArrayType = separateColourPlane ? 0 : sps.chromaFormat;
  const uint64_t subWidthC = (chromaArrayType == 1 || chromaArrayType == 2) ? 2 : 1;
  const uint64_t subHeightC = chromaArrayType == 1 ? 2 : 1;
  if (!cropped(width, subWidthC, left, right, sps.width) ||
      !cropped(height, subHeightC, top, bottom, sps.height)) {
    return std::nullopt;
  }
  return sps;
}

uint32_t nalType(VideoCodec codec, const uint8_t* nal) {
  return codec == VideoCodec::H264 ? (nal[0] & 0x1Fu) : ((nal[0] >> 1) & 0x3Fu);
}

using Nal = std::pair<const uint8_t*, size_t>;

void appendNal(std::vector<uint8_t>& out, const Nal& nal) {
  putBe16(out, nal.second);
  out.insert(out.end(), nal.first, nal.first + nal.second);
}

std::vector<uint8_t> buildAvcc(const std::vector<Nal>& spsList, const std::vector<Nal>& ppsList) {
  if (spsList.empty() || ppsList.empty() || spsList.size() > 31 || ppsList.size() > 255) return {};
  for (const Nal& n : spsList) {
    if (n.second > 0xFFFF) return {};
  }
  for (const Nal& n : ppsList) {
    if (n.second > 0xFFFF) return {};
  }
  const Nal& first = spsList.front();
  const std::optional<SpsInfo> sps = parseH264Sps(first.first, first.second);
  if (!sps) return {};

  std::vector<uint8_t> out = {1, first.first[1], first.first[2], first.first[3], 0xFF,
                              static_cast<uint8_t>(0xE0 | spsList.size())};
  for (const Nal& n : spsList) appendNal(out, n);
  out.push_back(static_cast<uint8_t>(ppsList.size()));
  for (const Nal& n : ppsList) appendNal(out, n);
  const uint8_t profile = first.first[1];
  if (profile == 100 || profile == 110 || profile == 122 || profile == 144 || profile == 244) {
    out.push_back(static_cast<uint8_t>(0xFC | (sps->chromaFormat & 3)));
    out.push_back(static_cast<uint8_t>(0xF8 | (sps->bitDepthLumaMinus8 & 7)));
    out.push_back(static_cast<uint8_t>(0xF8 | (sps->bitDepthChromaMinus8 & 7)));
    out.push_back(0);  // numOfSequenceParameterSetExt
  }
  return out;
}

std::vector<uint8_t> buildHvcc(const std::vector<Nal>& vpsList, const std::vector<Nal>& spsList,
                               const std::vector<Nal>& ppsList) {
  if (vpsList.empty() || spsList.empty() || ppsList.empty()) return {};
  const std::optional<SpsInfo> sps = parseH265Sps(spsList.front().first, spsList.front().second);
  if (!sps) return {};

  std::vector<uint8_t> out = {1};
  out.insert(out.end(), sps->profileTierLevel.begin(), sps->profileTierLevel.end());
  out.push_back(0xF0);  // reserved 1111 + min_spatial_segmentation_idc 0
  out.push_back(0x00);
  out.push_back(0xFC);  // reserved 111111 + parallelismType 0
  out.push_back(static_cast<uint8_t>(0xFC | (sps->chromaFormat & 3)));
  out.push_back(static_cast<uint8_t>(0xF8 | (sps->bitDepthLumaMinus8 & 7)));
  out.push_back(static_cast<uint8_t>(0xF8 | (sps->bitDepthChromaMinus8 & 7)));
  out.push_back(0);  // avgFrameRate
  out.push_back(0);
  // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3
  out.push_back(static_cast<uint8_t>(((sps->maxSubLayersMinus1 + 1) & 7) << 3 |
                                     sps->temporalIdNesting << 2 | 3));
  out.push_back(3);  // numOfArrays
  const std::array<std::pair<uint8_t, const std::vector<Nal>*>, 3> arrays = {
      {{0x20, &vpsList}, {0x21, &spsList}, {0x22, &ppsList}}};
  for (const auto& [type, list] : arrays) {
    if (list->size() > 0xFFFF) return {};
    out.push_back(type);  // array_completeness 0, reserved 0, NAL_unit_type
    putBe16(out, list->size());
    for (const Nal& n : *list) {
      if (n.second > 0xFFFF) return {};
      appendNal(out, n);
    }
  }
  return out;
}

// The SPS units of an avcC / hvcC record (or of Annex-B codec data).
std::vector<Nal> spsFromCodecPrivate(VideoCodec codec, const std::vector<uint8_t>& cpd) {
  std::vector<Nal> result;
  const uint8_t* d = cpd.data();
  const size_t n = cpd.size();
  if (isAnnexB(d, n)) {
    const uint32_t spsType = codec == VideoCodec::H264 ? 7 : 33;
    for (const Nal& nal : splitAnnexB(d, n)) {
      if (nalType(codec, nal.first) == spsType) result.push_back(nal);
    }
    return result;
  }
  if (n < 1 || d[0] != 1) return result;
  if (codec == VideoCodec::H264) {
    if (n < 6) return result;
    size_t pos = 6;
    const uint32_t count = d[5] & 0x1Fu;
    for (uint32_t i = 0; i < count && pos + 2 <= n; ++i) {
      const size_t len = readBe16(d + pos);
      if (len == 0 || len > n - pos - 2) break;
      result.emplace_back(d + pos + 2, len);
      pos += 2 + len;
    }
    return result;
  }
  if (n < 23) return result;
  size_t pos = 23;
  const uint32_t arrays = d[22];
  for (uint32_t a = 0; a < arrays && pos + 3 <= n; ++a) {
    const uint32_t type = d[pos] & 0x3Fu;
    const uint32_t count = readBe16(d + pos + 1);
    pos += 3;
    for (uint32_t i = 0; i < count; ++i) {
      if (pos + 2 > n) return result;
      const size_t len = readBe16(d + pos);
      if (len == 0 || len > n - pos - 2) return result;
      if (type == 33) result.emplace_back(d + pos + 2, len);
      pos += 2 + len;
    }
  }
  return result;
}

}  // namespace

std::vector<std::pair<const uint8_t*, size_t>> splitAnnexB(const uint8_t* data, size_t size) {
  std::vector<Nal> nals;
  if (data == nullptr) return nals;
  size_t start = findStartCode(data, size, 0);
  while (start < size) {
    const size_t begin = start + 3;
    const size_t next = findStartCode(data, size, begin);
    size_t end = next;
    while (end > begin && data[end - 1] == 0) --end;  // trailing zeros / 4-byte start code
    if (end > begin) nals.emplace_back(data + begin, end - begin);
    start = next;
  }
  return nals;
}

std::vector<uint8_t> annexBToLengthPrefixed(const uint8_t* data, size_t size) {
  const std::vector<Nal> nals = splitAnnexB(data, size);
  size_t total = 0;
  for (const Nal& n : nals) total += 4 + n.second;
  std::vector<uint8_t> out;
  out.reserve(total);
  for (const Nal& n : nals) {
    putBe32(out, n.second);
    out.insert(out.end(), n.first, n.first + n.second);
  }
  return out;
}

bool isAnnexB(const uint8_t* data, size_t size) {
  if (data == nullptr || size < 3) return false;
  if (size >= 4 && data[0] == 0 && data[1] == 0 && data[2] == 0 && data[3] == 1) return true;
  if (data[0] == 0 && data[1] == 0 && data[2] == 1) return !coversAsLengthPrefixed(data, size);
  return false;
}

std::vector<uint8_t> codecPrivateFromAnnexB(VideoCodec codec, const uint8_t* data, size_t size) {
  std::vector<Nal> vps, sps, pps;
  // Adds a parameter set unless a byte-identical one is already listed (encoders repeat them).
  const auto addUnique = [](std::vector<Nal>& list, const Nal& n) {
    for (const Nal& known : list) {
      if (known.second == n.second && std::memcmp(known.first, n.first, n.second) == 0) return;
    }
    list.push_back(n);
  };
  for (const Nal& n : splitAnnexB(data, size)) {
    const uint32_t type = nalType(codec, n.first);
    if (codec == VideoCodec::H264) {
      if (type == 7) addUnique(sps, n);
      if (type == 8) addUnique(pps, n);
    } else {
      if (type == 32) addUnique(vps, n);
      if (type == 33) addUnique(sps, n);
      if (type == 34) addUnique(pps, n);
    }
  }
  return codec == VideoCodec::H264 ? buildAvcc(sps, pps) : buildHvcc(vps, sps, pps);
}

bool dimensionsFromCodecPrivate(VideoCodec codec, const std::vector<uint8_t>& cpd, uint32_t& width,
                                uint32_t& height) {
  for (const Nal& n : spsFromCodecPrivate(codec, cpd)) {
    const std::optional<SpsInfo> sps = codec == VideoCodec::H264 ? parseH264Sps(n.first, n.second)
                                                                 : parseH265Sps(n.first, n.second);
    if (sps) {
      width = sps->width;
      height = sps->height;
      return true;
    }
  }
  return false;
}

bool aacConfig(const std::vector<uint8_t>& asc, double& samplingFrequency, uint32_t& channels) {
  static constexpr std::array<uint32_t, 13> kRates = {96000, 88200, 64000, 48000, 44100,
                                                      32000, 24000, 22050, 16000, 12000,
                                                      11025, 8000,  7350};
  BitReader r(asc);
  if (r.bits(5) == 31) r.bits(6);  // audioObjectTypeExt
  const uint32_t index = r.bits(4);
  uint32_t rate = 0;
  if (index == 15) {
    rate = r.bits(24);
  } else if (index < kRates.size()) {
    rate = kRates[index];
  }
  const uint32_t config = r.bits(4);
  if (r.failed() || rate == 0 || config == 0 || config > 7) return false;
  samplingFrequency = rate;
  channels = config == 7 ? 8 : config;
  return true;
}

std::vector<uint8_t> pcmCodecPrivate(bool alaw, uint32_t channels, uint32_t rate) {
  const uint64_t avgBytes = uint64_t{channels} * rate / 8;
  const auto le16 = [](uint64_t v) {
    return std::array<uint8_t, 2>{static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
  };
  const auto le32 = [](uint64_t v) {
    return std::array<uint8_t, 4>{static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8),
                                  static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 24)};
  };
  std::vector<uint8_t> out;
  out.reserve(18);
  for (uint8_t b : le16(alaw ? 6 : 7)) out.push_back(b);
  for (uint8_t b : le16(channels)) out.push_back(b);
  for (uint8_t b : le32(rate)) out.push_back(b);
  for (uint8_t b : le32(avgBytes)) out.push_back(b);
  for (uint8_t b : le16(channels)) out.push_back(b);  // block align
  out.insert(out.end(), 4, 0);                         // bits per sample, cbSize
  return out;
}

}  // namespace kvs
