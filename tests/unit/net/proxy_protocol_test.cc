// Unit tests for net/proxy_protocol.h: valid v1/v2 headers (including the exact bytes HAProxy 2.6
// and swaks sent in the harness captures), every prefix of each is NeedMore, bytes after a header
// are untouched, and every kind of malformed header is an Error, as early as it can be seen.
#include "net/proxy_protocol.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace net {
namespace {

using Tlvs = std::vector<std::pair<uint8_t, std::string>>;

std::string unhex(std::string_view h) {
  std::string out;
  int hi = -1;
  for (char c : h) {
    int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (v < 0) continue;  // spaces between groups
    if (hi < 0) {
      hi = v;
    } else {
      out += static_cast<char>(hi << 4 | v);
      hi = -1;
    }
  }
  return out;
}

// A string from a literal that may hold NUL bytes.
template <size_t N>
std::string bin(const char (&s)[N]) {
  return std::string(s, N - 1);
}

const std::string kSig = unhex("0d0a0d0a000d0a515549540a");

// Bitwise CRC-32C, independent of the parser's table-driven one.
uint32_t crc32c(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
  }
  return ~c;
}

std::string be16(size_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }

std::string tlv(uint8_t type, std::string_view value) {
  return std::string(1, static_cast<char>(type)) + be16(value.size()) + std::string(value);
}

// A v2 header: signature, ver|cmd, fam, length of `body`, body.
std::string v2(uint8_t ver_cmd, uint8_t fam, std::string_view body) {
  return kSig + static_cast<char>(ver_cmd) + static_cast<char>(fam) + be16(body.size()) + std::string(body);
}

// The same with a CRC32C TLV appended and filled in (as a sender does it).
std::string v2_crc(uint8_t ver_cmd, uint8_t fam, std::string_view body) {
  std::string h = v2(ver_cmd, fam, std::string(body) + tlv(0x03, std::string(4, '\0')));
  uint32_t c = crc32c(h);
  for (int k = 0; k < 4; ++k) h[h.size() - 4 + k] = static_cast<char>(c >> (24 - 8 * k));
  return h;
}

const std::string kTcp4Body = unhex("c0000201 c6336402 d431 0019");  // 192.0.2.1:54321 -> 198.51.100.2:25
const std::string kTcp6Body =
    unhex("20010db8000000000000000000000001 20010db8000000000000000000000002 0400 01bb");  // :1024 -> :443

// --- captured bytes (HARNESS.md §6 and §7) ---
// HAProxy 2.6.12, client via s1 (no TLVs): 127.0.0.1:43060 -> 127.0.0.1:31006.
const std::string kHaproxyS1 = unhex("0d0a0d0a000d0a515549540a 21 11 000c 7f000001 7f000001 a834 791e");
// HAProxy via s2 with proxy-v2-options crc32c,unique-id (the CRC matches this exact unique id).
const std::string kHaproxyUniqueId = "7F000001:A1A4_7F000001:791E_6B025E16_0009:3F4B";
const std::string kHaproxyS2 =
    unhex("0d0a0d0a000d0a515549540a 21 11 0044 7f000001 7f000001 a1a4 791e 03 0004 388cbb81 05 002e") +
    kHaproxyUniqueId;
// HAProxy smtpchk health checks with check-send-proxy: LOCAL, UNSPEC, no addresses; on s2 with a CRC.
const std::string kHaproxyCheck = unhex("0d0a0d0a000d0a515549540a 20 00 0000");
const std::string kHaproxyCheckCrc = unhex("0d0a0d0a000d0a515549540a 20 00 0007 03 0004 a9b87e8f");
// swaks 20201014 --proxy-version 2 / 1 --proxy-source 203.0.113.7 --proxy-source-port 40000.
const std::string kSwaksV2 = unhex("0d0a0d0a000d0a515549540a 21 11 000c cb007107 7f000001 9c40 0019");
const std::string kSwaksV1 = "PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n";

struct ValidCase {
  const char* name;
  std::string bytes;
  int version;
  bool local;
  std::string src, dst;
  uint16_t sport, dport;
  Tlvs tlvs;
};

std::vector<ValidCase> valid_cases() {
  const std::string v6max = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  return {
      {"v1_tcp4", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", 1, false, "192.168.0.1", "192.168.0.11",
       56324, 443, {}},
      {"v1_tcp4_extremes", "PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n", 1, false, "255.255.255.255", "0.0.0.0",
       65535, 0, {}},
      {"v1_tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 1024 443\r\n", 1, false, "2001:db8::1", "2001:db8::2", 1024,
       443, {}},
      {"v1_tcp6_uppercase_and_long_form", "PROXY TCP6 2001:0DB8:0:0:0:0:0:00A1 ::1 1 2\r\n", 1, false, "2001:db8::a1",
       "::1", 1, 2, {}},
      {"v1_tcp6_ipv4_tail", "PROXY TCP6 ::ffff:203.0.113.7 :: 40000 25\r\n", 1, false, "::ffff:203.0.113.7", "::",
       40000, 25, {}},
      {"v1_tcp6_longest", "PROXY TCP6 " + v6max + " " + v6max + " 65535 65535\r\n", 1, false, v6max, v6max, 65535,
       65535, {}},
      {"v1_unknown_short", "PROXY UNKNOWN\r\n", 1, true, "", "", 0, 0, {}},
      {"v1_unknown_with_ignored_fields", "PROXY UNKNOWN " + v6max + " " + v6max + " 65535 65535\r\n", 1, true, "",
       "", 0, 0, {}},
      {"v1_unknown_ignores_anything", "PROXY UNKNOWN  garbage\tis ignored\r\n", 1, true, "", "", 0, 0, {}},
      {"v1_swaks", kSwaksV1, 1, false, "203.0.113.7", "127.0.0.1", 40000, 25, {}},
      {"v2_tcp4", v2(0x21, 0x11, kTcp4Body), 2, false, "192.0.2.1", "198.51.100.2", 54321, 25, {}},
      {"v2_tcp6", v2(0x21, 0x21, kTcp6Body), 2, false, "2001:db8::1", "2001:db8::2", 1024, 443, {}},
      {"v2_local_unspec", v2(0x20, 0x00, ""), 2, true, "", "", 0, 0, {}},
      {"v2_local_with_tcp4_block_ignored", v2(0x20, 0x11, kTcp4Body + tlv(0x04, "pad")), 2, true, "", "", 0, 0,
       {{0x04, "pad"}}},
      {"v2_tlvs_noop_empty_custom", v2(0x21, 0x11, kTcp4Body + tlv(0x04, "") + tlv(0xE0, std::string("a\0b", 3))),
       2, false, "192.0.2.1", "198.51.100.2", 54321, 25, {{0x04, ""}, {0xE0, std::string("a\0b", 3)}}},
      {"v2_tcp6_with_crc", v2_crc(0x21, 0x21, kTcp6Body), 2, false, "2001:db8::1", "2001:db8::2", 1024, 443,
       {{0x03, v2_crc(0x21, 0x21, kTcp6Body).substr(16 + 36 + 3)}}},
      {"haproxy_s1", kHaproxyS1, 2, false, "127.0.0.1", "127.0.0.1", 43060, 31006, {}},
      {"haproxy_s2_crc32c_unique_id", kHaproxyS2, 2, false, "127.0.0.1", "127.0.0.1", 41380, 31006,
       {{0x03, unhex("388cbb81")}, {0x05, kHaproxyUniqueId}}},
      {"haproxy_check_local", kHaproxyCheck, 2, true, "", "", 0, 0, {}},
      {"haproxy_check_local_crc32c", kHaproxyCheckCrc, 2, true, "", "", 0, 0, {{0x03, unhex("a9b87e8f")}}},
      {"swaks_v2", kSwaksV2, 2, false, "203.0.113.7", "127.0.0.1", 40000, 25, {}},
  };
}

class Valid : public ::testing::TestWithParam<ValidCase> {};

TEST_P(Valid, ParsesExactly) {
  const ValidCase& c = GetParam();
  ProxyResult r = parse_proxy_header(c.bytes);
  ASSERT_EQ(r.status, ProxyStatus::Done) << r.error;
  EXPECT_EQ(r.consumed, c.bytes.size());
  EXPECT_EQ(r.header.version, c.version);
  EXPECT_EQ(r.header.local, c.local);
  EXPECT_EQ(r.header.src_ip, c.src);
  EXPECT_EQ(r.header.dst_ip, c.dst);
  EXPECT_EQ(r.header.src_port, c.sport);
  EXPECT_EQ(r.header.dst_port, c.dport);
  EXPECT_EQ(r.header.tlvs, c.tlvs);
  EXPECT_TRUE(r.error.empty());
}

TEST_P(Valid, EveryPrefixNeedsMore) {
  const ValidCase& c = GetParam();
  for (size_t k = 0; k < c.bytes.size(); ++k) {
    ProxyResult r = parse_proxy_header(std::string_view(c.bytes).substr(0, k));
    ASSERT_EQ(r.status, ProxyStatus::NeedMore) << "prefix of " << k << " bytes: " << r.error;
    EXPECT_EQ(r.consumed, 0u);
  }
}

TEST_P(Valid, TrailingBytesUntouched) {
  const ValidCase& c = GetParam();
  for (std::string tail : {std::string("EHLO client.example\r\n"), std::string("\r\n"), std::string(1, '\0'),
                           kSig, std::string("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), std::string(5000, '\xff')}) {
    ProxyResult r = parse_proxy_header(c.bytes + tail);
    ASSERT_EQ(r.status, ProxyStatus::Done) << r.error;
    EXPECT_EQ(r.consumed, c.bytes.size());
    EXPECT_EQ(r.header.tlvs, c.tlvs);
  }
}

// `more` is what a reader may take without looking: never a byte past the header.
TEST_P(Valid, NeedMoreNeverReachesPastTheHeader) {
  const ValidCase& c = GetParam();
  for (size_t k = 0; k < c.bytes.size(); ++k) {
    ProxyResult r = parse_proxy_header(std::string_view(c.bytes).substr(0, k));
    ASSERT_EQ(r.status, ProxyStatus::NeedMore);
    EXPECT_GE(r.more, 1u) << "prefix of " << k << " bytes";
    EXPECT_LE(k + r.more, c.bytes.size()) << "prefix of " << k << " bytes";
  }
}

// The session's loop with the header and what follows it all in the socket: reading what `more`
// says ends exactly at the header's end.
TEST_P(Valid, ReadingWhatNeedMoreSaysStopsAtTheHeadersEnd) {
  const ValidCase& c = GetParam();
  const std::string stream = c.bytes + "EHLO client.example\r\n";
  std::string buf;
  ProxyResult r = parse_proxy_header(buf);
  size_t reads = 0;
  while (r.status == ProxyStatus::NeedMore && reads < stream.size()) {
    buf += stream.substr(buf.size(), r.more);
    ++reads;
    r = parse_proxy_header(buf);
  }
  ASSERT_EQ(r.status, ProxyStatus::Done) << r.error;
  EXPECT_EQ(buf, c.bytes);
  EXPECT_EQ(r.consumed, c.bytes.size());
  if (c.version == 2) {
    EXPECT_LE(reads, 3u);  // the fixed part (15, then 1), then the rest
  }
}

INSTANTIATE_TEST_SUITE_P(ProxyProtocol, Valid, ::testing::ValuesIn(valid_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ProxyProtocol, NothingYetNeedsTheShortestHeader) {
  ProxyResult r = parse_proxy_header("");
  ASSERT_EQ(r.status, ProxyStatus::NeedMore);
  EXPECT_EQ(r.more, std::string("PROXY UNKNOWN\r\n").size());  // v2 headers are at least 16 bytes
}

TEST(ProxyProtocol, NeedMoreCountsKnownLengths) {
  EXPECT_EQ(parse_proxy_header(kHaproxyS1.substr(0, 1)).more, 15u);   // the v2 fixed part
  EXPECT_EQ(parse_proxy_header(kHaproxyS1.substr(0, 16)).more, 12u);  // its length field: 12 address bytes
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN\r").more, 1u);          // the LF
  EXPECT_EQ(parse_proxy_header("PROXY TCP4 1.2.3.4 5.6.7.8 1 ").more, 3u);  // a port digit and CRLF
}

// --- malformed headers ---

struct BadCase {
  const char* name;
  std::string bytes;
  const char* error_part;  // expected in ProxyResult::error
};

std::vector<BadCase> bad_cases() {
  std::string s2_flipped = kHaproxyS2;
  s2_flipped.back() ^= 0x01;  // one bit of the unique id
  std::string s2_bad_crc = kHaproxyS2;
  s2_bad_crc[16 + 12 + 3] ^= 0x80;  // first byte of the CRC value
  std::string check_bad_crc = kHaproxyCheckCrc;
  check_bad_crc.back() ^= 0x01;
  std::string bad_sig = kHaproxyS1;
  bad_sig[7] = 'q';  // "QUIT" -> "qUIT"
  std::string v2_two_crc = v2(0x21, 0x11, kTcp4Body + tlv(0x03, bin("\0\0\0\0")) + tlv(0x03, bin("\0\0\0\0")));
  return {
      // not a header at all
      {"smtp_command", "EHLO client.example\r\n", "not a PROXY"},
      {"http", "GET / HTTP/1.0\r\n\r\n", "not a PROXY"},
      {"tls_client_hello", unhex("160301"), "not a PROXY"},
      {"nul_byte", std::string(1, '\0'), "not a PROXY"},
      // v1 syntax
      {"v1_lowercase_proxy", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY"},
      {"v1_lowercase_tcp4", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol"},
      {"v1_proxy_alone", "PROXY\r\n", "PROXY v1"},
      {"v1_proxy_tab", "PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY v1"},
      {"v1_double_space_after_proxy", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol"},
      {"v1_double_space_between_addresses", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "destination address"},
      {"v1_double_space_before_port", "PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n", "source port"},
      {"v1_trailing_space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "after the destination port"},
      {"v1_extra_field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "after the destination port"},
      {"v1_tcp4_no_fields", "PROXY TCP4\r\n", "missing"},
      {"v1_missing_port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "destination port missing"},
      {"v1_udp4", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol"},
      {"v1_unknownx", "PROXY UNKNOWNX\r\n", "unknown protocol"},
      {"v1_ipv4_octet_256", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "source address"},
      {"v1_ipv4_leading_zero", "PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", "source address"},
      {"v1_ipv4_three_parts", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "source address"},
      {"v1_ipv4_five_parts", "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "source address"},
      {"v1_ipv4_empty_part", "PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", "source address"},
      {"v1_ipv4_hostname", "PROXY TCP4 localhost 5.6.7.8 1 2\r\n", "source address"},
      {"v1_ipv6_in_tcp4", "PROXY TCP4 ::1 ::1 1 2\r\n", "source address"},
      {"v1_ipv4_in_tcp6", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "source address"},
      {"v1_ipv6_two_double_colons", "PROXY TCP6 1::2::3 ::1 1 2\r\n", "source address"},
      {"v1_ipv6_triple_colon", "PROXY TCP6 ::1 1:::2 1 2\r\n", "destination address"},
      {"v1_ipv6_five_hex_digits", "PROXY TCP6 12345:: ::1 1 2\r\n", "source address"},
      {"v1_ipv6_nine_groups", "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "source address"},
      {"v1_ipv6_seven_groups", "PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", "source address"},
      {"v1_ipv6_eight_groups_and_double_colon", "PROXY TCP6 1:2:3:4:5:6:7::8 ::1 1 2\r\n", "source address"},
      {"v1_ipv6_leading_single_colon", "PROXY TCP6 :1::2 ::1 1 2\r\n", "source address"},
      {"v1_ipv6_trailing_single_colon", "PROXY TCP6 1::2: ::1 1 2\r\n", "source address"},
      {"v1_ipv6_zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "source address"},
      {"v1_port_65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n", "source port"},
      {"v1_port_huge", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999999999999999999\r\n", "destination port"},
      {"v1_port_plus", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "source port"},
      {"v1_port_minus", "PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", "destination port"},
      {"v1_port_leading_zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "source port"},
      {"v1_port_garbage", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n", "destination port"},
      {"v1_port_hex", "PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n", "source port"},
      {"v1_missing_cr", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "LF without CR"},
      {"v1_unknown_missing_cr", "PROXY UNKNOWN\n", "LF without CR"},
      {"v1_cr_without_lf", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR not followed by LF"},
      {"v1_cr_cr_lf", "PROXY UNKNOWN\r\r\n", "CR not followed by LF"},
      {"v1_lone_cr_in_unknown", "PROXY UNKNOWN abc\rdef\r\n", "CR not followed by LF"},
      {"v1_108_bytes", "PROXY UNKNOWN " + std::string(92, 'x') + "\r\n", "107"},
      {"v1_no_crlf_in_107", "PROXY UNKNOWN " + std::string(200, 'x'), "107"},
      {"v1_tcp6_ipv4_tails_too_long",
       "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 1 "
       "2\r\n",
       "107"},
      // v2 structure
      {"v2_bad_signature", bad_sig, "signature"},
      {"v2_version_1", v2(0x11, 0x11, kTcp4Body), "version 1"},
      {"v2_version_3", v2(0x31, 0x11, kTcp4Body), "version 3"},
      {"v2_command_2", v2(0x22, 0x11, kTcp4Body), "command 2"},
      {"v2_command_f", v2(0x2F, 0x11, kTcp4Body), "command 15"},
      {"v2_proxy_unspec", v2(0x21, 0x00, ""), "UNSPEC"},
      {"v2_udp4", v2(0x21, 0x12, kTcp4Body), "0x12"},
      {"v2_udp6", v2(0x21, 0x22, kTcp6Body), "0x22"},
      {"v2_unix_stream", v2(0x21, 0x31, std::string(216, 'u')), "0x31"},
      {"v2_local_unix", v2(0x20, 0x31, std::string(216, 'u')), "0x31"},
      {"v2_inet_unspec_proto", v2(0x21, 0x10, kTcp4Body), "0x10"},
      {"v2_family_4", v2(0x21, 0x41, kTcp4Body), "0x41"},
      {"v2_tcp4_short_block", v2(0x21, 0x11, kTcp4Body.substr(0, 11)), "too short"},
      {"v2_tcp6_with_tcp4_block", v2(0x21, 0x21, kTcp4Body), "too short"},
      {"v2_local_tcp4_short_block", v2(0x20, 0x11, "abc"), "too short"},
      {"v2_oversized", v2(0x21, 0x11, kTcp4Body + tlv(0x04, std::string(4096 - 12 - 3 + 1, 'p'))), "above 4096"},
      {"v2_length_ffff", kSig + "\x21\x11\xff\xff", "above 4096"},
      // TLVs
      {"v2_tlv_overruns_length", v2(0x21, 0x11, kTcp4Body + "\x05" + be16(10) + "short"), "overruns"},
      {"v2_tlv_header_cut_1", v2(0x21, 0x11, kTcp4Body + "\x04"), "TLV header overruns"},
      {"v2_tlv_header_cut_2", v2(0x21, 0x11, kTcp4Body + tlv(0x04, "") + bin("\x04\x00")), "TLV header overruns"},
      {"v2_local_tlv_overrun", v2(0x20, 0x00, bin("\x04\x00\x01")), "overruns"},
      {"v2_crc_wrong_length", v2(0x21, 0x11, kTcp4Body + tlv(0x03, "abc")), "CRC32C TLV of length 3"},
      {"v2_crc_twice", v2_two_crc, "more than one CRC32C"},
      {"v2_crc_zero", v2(0x21, 0x11, kTcp4Body + tlv(0x03, std::string(4, '\0'))), "CRC32C mismatch"},
      {"haproxy_s2_payload_bit_flipped", s2_flipped, "CRC32C mismatch"},
      {"haproxy_s2_crc_bit_flipped", s2_bad_crc, "CRC32C mismatch"},
      {"haproxy_check_crc_bit_flipped", check_bad_crc, "CRC32C mismatch"},
  };
}

class Invalid : public ::testing::TestWithParam<BadCase> {};

TEST_P(Invalid, IsError) {
  const BadCase& c = GetParam();
  ProxyResult r = parse_proxy_header(c.bytes);
  ASSERT_EQ(r.status, ProxyStatus::Error);
  EXPECT_NE(r.error.find(c.error_part), std::string::npos) << r.error;
  EXPECT_EQ(r.consumed, 0u);
  // Once an Error, always an Error: more bytes never make it a header.
  EXPECT_EQ(parse_proxy_header(c.bytes + "\r\n" + std::string(200, 'z')).status, ProxyStatus::Error);
}

// A prefix either still needs more or already failed; no prefix is ever Done.
TEST_P(Invalid, NoPrefixIsDone) {
  const BadCase& c = GetParam();
  bool failed = false;
  for (size_t k = 0; k <= c.bytes.size(); ++k) {
    ProxyResult r = parse_proxy_header(std::string_view(c.bytes).substr(0, k));
    ASSERT_NE(r.status, ProxyStatus::Done) << "prefix of " << k << " bytes";
    if (failed) {
      ASSERT_EQ(r.status, ProxyStatus::Error) << "an Error became NeedMore at " << k << " bytes";
    }
    failed = r.status == ProxyStatus::Error;
  }
}

INSTANTIATE_TEST_SUITE_P(ProxyProtocol, Invalid, ::testing::ValuesIn(bad_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// --- errors are reported as soon as the bytes show them (no waiting for the rest) ---

struct EarlyCase {
  const char* name;
  std::string bytes;  // a prefix that can no longer become a header
};

class EarlyError : public ::testing::TestWithParam<EarlyCase> {};

TEST_P(EarlyError, WithoutTheRest) {
  ProxyResult r = parse_proxy_header(GetParam().bytes);
  EXPECT_EQ(r.status, ProxyStatus::Error) << r.error;
}

INSTANTIATE_TEST_SUITE_P(
    ProxyProtocol, EarlyError,
    ::testing::ValuesIn(std::vector<EarlyCase>{
        {"first_byte", "E"},
        {"lowercase_p", "p"},
        {"proxx", "PROXX"},
        {"proxy_nospace", "PROXYT"},
        {"double_space", "PROXY TCP4  "},
        {"bad_protocol", "PROXY TCP5"},
        {"ipv4_octet", "PROXY TCP4 300"},
        {"ipv4_leading_zero", "PROXY TCP4 10.01"},
        {"ipv4_letter", "PROXY TCP4 10.a"},
        {"ipv6_five_digits", "PROXY TCP6 abcde"},
        {"ipv6_bad_char", "PROXY TCP6 ::g"},
        {"ipv6_second_double_colon", "PROXY TCP6 1::2::"},
        {"ipv6_too_many_groups", "PROXY TCP6 1:2:3:4:5:6:7:8:"},
        {"ipv6_dotted_quad_too_early", "PROXY TCP6 1:2:3:4:5:1.2"},
        {"port_too_big", "PROXY TCP4 1.2.3.4 5.6.7.8 65536"},
        {"port_leading_zero", "PROXY TCP4 1.2.3.4 5.6.7.8 00"},
        {"extra_field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 "},
        {"unknown_106_bytes_no_cr", "PROXY UNKNOWN " + std::string(92, 'x')},
        {"tcp6_cannot_end_in_107",  // 102 bytes; the shortest completion " 0 0\r\n" makes it 108
         "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"},
        {"v2_signature_byte_3", unhex("0d0a0e")},
        {"v2_version_at_13_bytes", kSig + "\x11"},
        {"v2_command_at_13_bytes", kSig + "\x23"},
        {"v2_family_at_14_bytes", kSig + "\x21\x31"},
        {"v2_proxy_unspec_at_14_bytes", kSig + bin("\x21\x00")},
        {"v2_length_high_byte", kSig + "\x21\x11\x11"},
        {"v2_short_block_at_16_bytes", kSig + bin("\x21\x21\x00\x0c")},
        {"v2_tlv_overrun_before_the_rest", (kSig + bin("\x21\x11\x00\x20") + kTcp4Body + bin("\x04\x00\x30"))},
        {"v2_crc_length_before_the_rest", (kSig + bin("\x21\x11\x00\x20") + kTcp4Body + bin("\x03\x00\x05"))},
    }),
    [](const auto& info) { return std::string(info.param.name); });

// --- specific behaviour ---

TEST(ProxyProtocol, EmptyInputNeedsMore) {
  EXPECT_EQ(parse_proxy_header("").status, ProxyStatus::NeedMore);
  EXPECT_EQ(parse_proxy_header(std::string_view()).status, ProxyStatus::NeedMore);
}

TEST(ProxyProtocol, V1LongestLineIs107Bytes) {
  std::string line = "PROXY UNKNOWN " + std::string(91, 'x') + "\r\n";
  ASSERT_EQ(line.size(), 107u);
  ProxyResult r = parse_proxy_header(line + "QUIT\r\n");
  ASSERT_EQ(r.status, ProxyStatus::Done) << r.error;
  EXPECT_EQ(r.consumed, 107u);
  EXPECT_TRUE(r.header.local);
  // 106 bytes: still a valid beginning (the LF is missing); one more x and it cannot fit.
  EXPECT_EQ(parse_proxy_header(std::string_view(line).substr(0, 106)).status, ProxyStatus::NeedMore);
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN " + std::string(92, 'x') + "\r").status, ProxyStatus::Error);
}

TEST(ProxyProtocol, V1Tcp6IPv4TailsWithinTheLimit) {
  // One long IPv4-tailed address fits in 107 bytes; its prefixes all need more.
  std::string line = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 ::1 65535 65535\r\n";
  ProxyResult r = parse_proxy_header(line);
  ASSERT_EQ(r.status, ProxyStatus::Done) << r.error;
  EXPECT_EQ(r.header.src_ip, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  for (size_t k = 0; k < line.size(); ++k)
    ASSERT_EQ(parse_proxy_header(std::string_view(line).substr(0, k)).status, ProxyStatus::NeedMore) << k;
}

TEST(ProxyProtocol, V2LengthBoundIsTheLengthField) {
  std::string body = kTcp4Body + tlv(0x04, std::string(100, 'p'));  // length 115
  std::string h = v2(0x21, 0x11, body);
  EXPECT_EQ(parse_proxy_header(h, 115).status, ProxyStatus::Done);
  EXPECT_EQ(parse_proxy_header(h, 114).status, ProxyStatus::Error);
  // Refused from the 16 fixed bytes alone.
  EXPECT_EQ(parse_proxy_header(std::string_view(h).substr(0, 16), 114).status, ProxyStatus::Error);
  // max 0: only an empty LOCAL header fits.
  EXPECT_EQ(parse_proxy_header(kHaproxyCheck, 0).status, ProxyStatus::Done);
  EXPECT_EQ(parse_proxy_header(kHaproxyCheckCrc, 0).status, ProxyStatus::Error);
  // The largest length the field can carry, when allowed.
  std::string big = v2(0x21, 0x11, kTcp4Body + tlv(0xE1, std::string(65535 - 12 - 3, 'b')));
  ProxyResult r = parse_proxy_header(big, 65535);
  ASSERT_EQ(r.status, ProxyStatus::Done) << r.error;
  EXPECT_EQ(r.consumed, 16u + 65535u);
  EXPECT_EQ(parse_proxy_header(std::string_view(big).substr(0, 40000), 65535).status, ProxyStatus::NeedMore);
  EXPECT_EQ(parse_proxy_header(big).status, ProxyStatus::Error);
}

TEST(ProxyProtocol, V2CrcComputedBySenderIsAccepted) {
  for (uint8_t fam : {uint8_t{0x11}, uint8_t{0x21}}) {
    std::string h = v2_crc(0x21, fam, (fam == 0x11 ? kTcp4Body : kTcp6Body) + tlv(0x05, "id-1"));
    ProxyResult r = parse_proxy_header(h);
    ASSERT_EQ(r.status, ProxyStatus::Done) << r.error;
    ASSERT_EQ(r.header.tlvs.size(), 2u);
    EXPECT_EQ(r.header.tlvs[0], (std::pair<uint8_t, std::string>{0x05, "id-1"}));
    EXPECT_EQ(r.header.tlvs[1].first, 0x03);
    // Any single bit flipped after the signature and command bytes is caught, except in the CRC
    // TLV's type byte (then there is no CRC TLV to check: the protocol cannot tell).
    for (size_t i = 14; i < h.size(); ++i) {
      if (i == h.size() - 7) continue;
      std::string bad = h;
      bad[i] ^= 0x10;
      EXPECT_EQ(parse_proxy_header(bad).status, ProxyStatus::Error) << "byte " << i;
    }
  }
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the check value of the reference CRC in this test
}

TEST(ProxyProtocol, V2CrcOfHaproxyCaptures) {
  // The captured values agree with CRC-32C over the header with the value zeroed, big-endian.
  std::string h = kHaproxyS2;
  h.replace(16 + 12 + 3, 4, std::string(4, '\0'));
  EXPECT_EQ(crc32c(h), 0x388cbb81u);
  std::string c = kHaproxyCheckCrc;
  c.replace(16 + 3, 4, std::string(4, '\0'));
  EXPECT_EQ(crc32c(c), 0xa9b87e8fu);
}

TEST(ProxyProtocol, V2LocalKeepsTlvsAndIgnoresAddresses) {
  ProxyResult r = parse_proxy_header(v2(0x20, 0x21, kTcp6Body + tlv(0x05, "u")));
  ASSERT_EQ(r.status, ProxyStatus::Done) << r.error;
  EXPECT_TRUE(r.header.local);
  EXPECT_TRUE(r.header.src_ip.empty());
  EXPECT_TRUE(r.header.dst_ip.empty());
  EXPECT_EQ(r.header.src_port, 0);
  ASSERT_EQ(r.header.tlvs.size(), 1u);
}

TEST(ProxyProtocol, V1UnknownPrefixesOfAnyContent) {
  EXPECT_EQ(parse_proxy_header("PROXY UNKN").status, ProxyStatus::NeedMore);
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN").status, ProxyStatus::NeedMore);
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN \x01\xff").status, ProxyStatus::NeedMore);
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN\r").status, ProxyStatus::NeedMore);
  EXPECT_EQ(parse_proxy_header("PROXY TCP").status, ProxyStatus::NeedMore);
  EXPECT_EQ(parse_proxy_header("PROXY TCP4 ").status, ProxyStatus::NeedMore);
  EXPECT_EQ(parse_proxy_header("PROXY TCP6 ").status, ProxyStatus::NeedMore);
}

// IPv6 forms, judged against inet_pton (the same text must be accepted by both, or refused by
// both), and the address printed as inet_ntop prints it.
TEST(ProxyProtocol, V1Ipv6FormsAgreeWithInetPton) {
  const char* forms[] = {
      "::", "::1", "1::", "1::2", "::ffff:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::",
      "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5::1.2.3.4", "FE80::ABCD", "0000:0000::0001",
      "2001:db8:0:0:1:0:0:1", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", ":::", ":1::", "1::2:", "1:2:3:4:5:6:7:8::",
      "::1.2.3", "::1.2.3.4.5", "::01.2.3.4", "::256.1.1.1", "1.2.3.4", "::1.2.3.4:5", "12345::", "g::", "",
      ":", "1:", "::ffff:1.2.3.4:1", "1:2:3:4:5:6:7:1.2.3.4", "1::2:3:4:5:6:7:8",
  };
  for (const char* a : forms) {
    unsigned char buf[16];
    bool pton = inet_pton(AF_INET6, a, buf) == 1;
    std::string line = std::string("PROXY TCP6 ") + a + " ::1 1 2\r\n";
    ProxyResult r = parse_proxy_header(line);
    EXPECT_EQ(r.status == ProxyStatus::Done, pton) << a << ": " << r.error;
    if (pton && r.status == ProxyStatus::Done) {
      char text[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, buf, text, sizeof text);
      EXPECT_EQ(r.header.src_ip, text) << a;
    }
  }
}

// The same for IPv4 (glibc's inet_pton refuses leading zeros as well).
TEST(ProxyProtocol, V1Ipv4FormsAgreeWithInetPton) {
  const char* forms[] = {"0.0.0.0", "1.2.3.4", "255.255.255.255", "10.0.0.1", "256.0.0.0", "1.2.3", "1.2.3.4.5",
                         "01.2.3.4", "1.2.3.00", "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4a", "a.b.c.d", "1.2.3.1000"};
  for (const char* a : forms) {
    unsigned char buf[4];
    bool pton = inet_pton(AF_INET, a, buf) == 1;
    std::string line = std::string("PROXY TCP4 ") + a + " 127.0.0.1 1 2\r\n";
    ProxyResult r = parse_proxy_header(line);
    EXPECT_EQ(r.status == ProxyStatus::Done, pton) << a << ": " << r.error;
    if (pton && r.status == ProxyStatus::Done) {
      EXPECT_EQ(r.header.src_ip, a);
    }
  }
}

}  // namespace
}  // namespace net
