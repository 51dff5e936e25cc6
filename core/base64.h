// The one base64 of mxfront: strict RFC 4648 (standard alphabet, padding required), used for SMTP
// AUTH exchanges and the users file's {SSHA}/{SSHA512} values. decode() refuses anything that is not
// canonical base64 (no whitespace, '=' only as final padding, zero pad bits): nullopt.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace core {
std::string base64_encode(std::string_view in);
std::optional<std::string> base64_decode(std::string_view in);
}  // namespace core
