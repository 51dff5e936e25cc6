// PROXY protocol header parser (HAProxy doc/proxy-protocol.txt, versions 1 and 2), sans-I/O:
// no sockets, no Asio, no clock. The caller peeks at the first bytes of a connection and calls
// parse_proxy_header() again with more bytes while the answer is NeedMore.
//
// Contract:
//  - NeedMore only while the bytes so far are a valid prefix of some complete v1 or v2 header
//    (so a sender that never completes one is caught by the caller's timeout, and garbage is
//    refused as soon as it is seen, never waited for). `more` then says how many more bytes
//    certainly belong to the header (at least 1): a caller reading no more than that never takes
//    a byte that follows the header (15 with no bytes yet, the shortest header of either version).
//  - Done: `consumed` is the header's exact length; bytes after it are never looked at.
//  - Error: `error` says what is wrong (for the log); the connection must be closed.
//  - Never reads past `bytes`, never throws on any input (std::bad_alloc aside).
//
// Accepted:
//  v1: "PROXY TCP4 <ipv4> <ipv4> <port> <port>\r\n", the same with TCP6 and IPv6 addresses, and
//      "PROXY UNKNOWN" followed by "\r\n" or by a space and anything up to the CRLF (ignored).
//      At most 107 bytes including the CRLF; single spaces; IPv4 as four decimal numbers 0-255
//      without leading zeros; IPv6 in RFC 4291 text form (an IPv4 tail allowed); ports 0-65535 in
//      decimal without leading zeros or sign. A lone CR or LF is an error.
//  v2: the 12-byte signature, version 2, command LOCAL (0) or PROXY (1); family/protocol
//      TCP over IPv4 (0x11) or IPv6 (0x21), or UNSPEC (0x00) with LOCAL only; the length field
//      (bytes after the fixed 16) at most `max_v2_length` and at least the address block;
//      the rest of the header is a sequence of TLVs (type, 2-byte big-endian length, value)
//      that fills it exactly. A CRC32C TLV (0x03) must be 4 bytes, appear once, and match the
//      CRC-32C (Castagnoli) of the whole header with its value zeroed (stored big-endian).
//  LOCAL (v2) and UNKNOWN (v1) give `local = true` and no addresses: the caller uses the
//  socket's own. With v2 LOCAL any address block present is skipped, TLVs are still kept.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace net {

struct ProxyHeader {
  int version = 0;            // 1 or 2
  bool local = false;         // v2 LOCAL command or v1 "PROXY UNKNOWN": use the socket's own addresses
  std::string src_ip, dst_ip; // textual IPv4/IPv6 (as inet_ntop prints them); empty when local
  uint16_t src_port = 0, dst_port = 0;
  std::vector<std::pair<uint8_t, std::string>> tlvs;  // v2 TLVs, raw
};

enum class ProxyStatus { NeedMore, Done, Error };

struct ProxyResult {
  ProxyStatus status = ProxyStatus::NeedMore;
  size_t consumed = 0;        // with Done: the header's exact length in bytes (nothing after it is touched)
  size_t more = 0;            // with NeedMore: bytes still certainly to come (>= 1; reading this many never over-reads)
  ProxyHeader header;
  std::string error;          // with Error: what is wrong, for the log
};

// Parses the start of a connection's byte stream. Call again with more bytes while NeedMore
// (the caller peeks: the input always starts at the first byte of the connection).
// NeedMore is returned only while the bytes so far are a valid prefix of a v1 or v2 header.
// max_v2_length bounds the v2 length field, so a v2 header is at most 16 + max_v2_length bytes;
// a v1 header is at most 107 bytes.
ProxyResult parse_proxy_header(std::string_view bytes, size_t max_v2_length = 4096);

}  // namespace net
