// What the rules filter matches in a message, extracted with GMime (never a hand-written MIME
// parser): the decoded header values and the decoded text of the text/* parts.
// Contract: pure functions of the raw message (LF line endings, dot-unstuffed); thread-safe
// (every call builds and frees its own GMime objects; GMime is initialised once per process).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace filters::mime {

// Initialises GMime once per process (thread-safe; every function below calls it).
void ensure_init();

struct Header {
  std::string name;   // as written
  std::string value;  // unfolded, RFC 2047 encoded-words decoded to UTF-8
};

// Every header of the top-level header block, in order, all occurrences. Only the first
// `limit` octets of the header block are looked at (cut at a line end); cheap enough for an
// I/O thread when `limit` is small.
std::vector<Header> headers(std::string_view message, size_t limit);

// The decoded text of every text/* part (any depth, including attached messages), in order,
// transfer encoding (base64, quoted-printable) undone and charset converted to UTF-8; text/html
// as its HTML source. Parts are joined with '\n'; at most `limit` octets are returned.
// CPU-heavy on big messages: run it on the worker pool.
std::string body_text(std::string_view message, size_t limit);

}  // namespace filters::mime
