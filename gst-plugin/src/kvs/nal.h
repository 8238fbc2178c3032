// H.264 / H.265 bitstream helpers for the MKV packager: Annex-B splitting and conversion to
// length-prefixed NAL units, codec private data (avcC / hvcC) built from in-band parameter sets,
// picture size from an SPS, and the audio codec private data kvssink needs (AAC, G.711).
//
// Plain C++, no GStreamer types. All functions are pure and thread-safe; none throws except
// std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace kvs {

enum class VideoCodec { H264, H265 };

// Splits an Annex-B byte stream (one access unit or more) into NAL units. Start codes are
// 00 00 01 and 00 00 00 01; the returned ranges point into `data` and exclude the start code and
// any zero bytes that trail a NAL unit (trailing_zero_8bits / the leading zero of a 4-byte start
// code). Bytes before the first start code and empty NAL units are ignored.
std::vector<std::pair<const uint8_t*, size_t>> splitAnnexB(const uint8_t* data, size_t size);

// Converts an Annex-B access unit to NAL units each prefixed by its 4-byte big-endian length
// (the AVCC/HVCC sample format with lengthSizeMinusOne = 3). Every NAL unit is kept, including
// parameter sets, SEI and access unit delimiters: in-band parameter sets let a decoder follow
// mid-stream changes, and keeping everything makes the conversion lossless and codec-agnostic.
// Returns an empty vector if `data` holds no NAL unit.
std::vector<uint8_t> annexBToLengthPrefixed(const uint8_t* data, size_t size);

// True if `data` starts with an Annex-B start code. A 4-byte length prefix can also begin with
// 00 00 01 (a NAL unit of 256..511 bytes); that case is recognised by walking the buffer as
// length-prefixed NAL units: if the lengths cover the buffer exactly, it is not Annex-B.
bool isAnnexB(const uint8_t* data, size_t size);

// Builds codec private data from the parameter sets found anywhere in an Annex-B buffer
// (normally a key frame). Every distinct parameter set is listed once, in stream order
// (byte-identical repeats are dropped). Returns an empty vector unless all required parameter
// sets are present and the first SPS parses.
//  - H.264: avcC (ISO/IEC 14496-15 5.3.3.1): version 1, profile / compatibility / level copied
//    from the first SPS, 0xFF (4-byte lengths), 0xE0 | number of SPS, the SPS units, number of
//    PPS, the PPS units. For the high profiles (100, 110, 122, 144 as ISO lists them, plus 244,
//    High 4:4:4 Predictive, which replaced 144) the chroma_format / bit-depth trailer with zero
//    SPS-extension units is appended. (The AWS producer omits that trailer; decoders accept
//    both forms.)
//  - H.265: hvcC (ISO/IEC 14496-15 8.3.3.1) as the AWS producer lays it out: general
//    profile/tier/level and constraint flags from the SPS, F0 00 FC, chroma format and bit
//    depths from the SPS, avgFrameRate 0, then the temporal-layer byte (0x0F for a one-layer
//    stream: 1 layer, nested, 4-byte lengths), and three arrays VPS (0x20), SPS (0x21) and
//    PPS (0x22).
std::vector<uint8_t> codecPrivateFromAnnexB(VideoCodec codec, const uint8_t* data, size_t size);

// Picture width/height (after cropping / conformance window) from the first SPS inside an avcC
// (H.264) or hvcC (H.265) record. Annex-B codec data (a byte stream holding the SPS) is
// accepted too. Returns false if there is no SPS or it cannot be parsed.
bool dimensionsFromCodecPrivate(VideoCodec codec, const std::vector<uint8_t>& cpd, uint32_t& width,
                                uint32_t& height);

// Sampling frequency and channel count from an MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3
// 1.6.2.1), including the escaped object type and the explicit 24-bit frequency. Channel
// configuration 7 means 8 channels. Returns false for reserved frequency indices and for
// channel configuration 0 (layout given by a program config element, not supported).
bool aacConfig(const std::vector<uint8_t>& asc, double& samplingFrequency, uint32_t& channels);

// The 18-byte WAVEFORMATEX-like codec private data the AWS producer writes for G.711 (§6.3),
// all fields little-endian: format tag (6 A-law, 7 mu-law), channels, sample rate,
// "average bytes per second" = channels * rate / 8 (sic, as the AWS producer computes it),
// block align = channels, bits per sample 0, extra size 0.
std::vector<uint8_t> pcmCodecPrivate(bool alaw, uint32_t channels, uint32_t rate);

}  // namespace kvs
