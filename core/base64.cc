// base64 encode/decode, table-driven.
#include "core/base64.h"

#include <array>

namespace core {
namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int, 256> make_table() {
  std::array<int, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = i;
  return t;
}
constexpr auto kTable = make_table();
}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) v |= static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    int a = kTable[static_cast<unsigned char>(in[i])], b = kTable[static_cast<unsigned char>(in[i + 1])];
    bool last = i + 4 == in.size();
    int c = in[i + 2] == '=' && last ? -2 : kTable[static_cast<unsigned char>(in[i + 2])];
    int d = in[i + 3] == '=' && last ? -2 : kTable[static_cast<unsigned char>(in[i + 3])];
    if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2)) return std::nullopt;
    unsigned v = (a << 18) | (b << 12) | ((c < 0 ? 0 : c) << 6) | (d < 0 ? 0 : d);
    out += static_cast<char>((v >> 16) & 255);
    if (c >= 0) out += static_cast<char>((v >> 8) & 255);
    if (d >= 0) out += static_cast<char>(v & 255);
    // Non-canonical: bits that padding should have zeroed.
    if ((c == -2 && (b & 15)) || (c >= 0 && d == -2 && (c & 3))) return std::nullopt;
  }
  return out;
}
}  // namespace core
