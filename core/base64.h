// Strict base64 (RFC 4648, standard alphabet, padding required) for SMTP AUTH exchanges.
// decode() refuses anything that is not canonical base64: the engine answers 501 5.5.2.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace core {
std::string base64_encode(std::string_view in);
std::optional<std::string> base64_decode(std::string_view in);
}  // namespace core
