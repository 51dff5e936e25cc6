// What the filters read in a message, extracted with GMime (never a hand-written MIME parser): the
// decoded header values and text/* parts (rules), and the decoded binary parts (ocr).
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

// A leaf part that is not text/*, its transfer encoding undone: what the OCR filter sniffs for images.
struct Part {
  std::string content_type;  // declared "type/subtype", lower-case ("" when none was declared)
  std::string filename;      // from Content-Disposition or Content-Type name=, "" when none
  std::string data;          // decoded content
};

// Every non-text leaf part (any depth, including attached messages), in order: at most
// `max_parts` parts and `max_bytes` decoded octets in all (a part that would pass the byte bound
// ends the walk). CPU-heavy on big messages: run it on the worker pool.
std::vector<Part> binary_parts(std::string_view message, size_t max_parts, size_t max_bytes);

}  // namespace filters::mime
