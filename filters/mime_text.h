// What the filters read in a message, extracted with GMime (never a hand-written MIME parser) in
// ONE parse: the decoded header values (rules), the decoded text/* parts (rules) and the decoded
// binary parts (ocr). The parse is shared by every filter of a message (filters/parsed_message.h).
// Contract: mime::Message::parse is a pure function of the raw message (LF line endings,
// dot-unstuffed) and its Limits; thread-safe (every call builds and frees its own GMime objects;
// GMime is initialised once per process); the Message it returns is an immutable value.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace filters::mime {

// Initialises GMime once per process (thread-safe; Message::parse calls it).
void ensure_init();

// How much of a message a parse keeps. Zero keeps nothing of that kind (and skips its work).
struct Limits {
  size_t header_octets = 0;  // headers: only those within the first N octets of the header block
  size_t text_octets = 0;    // text(): at most N octets
  size_t max_parts = 0;      // binary_parts(): at most N parts
  size_t part_octets = 0;    // binary_parts(): at most N decoded octets in all (and never more than
                             // the raw message has)
  // structure(): the whole tree is walked (not only until the text and parts above are kept) so
  // that a message nested deeper than max_depth or holding more than max_nodes parts is told.
  // Zero: not asked (the walk may stop early). They never change what the text and parts keep.
  size_t max_depth = 0;
  size_t max_nodes = 0;

  bool empty() const { return !header_octets && !text_octets && !max_parts && !max_depth && !max_nodes; }
  // Field-wise maximum: what a parse shared by two consumers must keep.
  static Limits merge(const Limits& a, const Limits& b);
  // Whether a parse with these limits gives `need` everything it would get from its own parse
  // (consumers that need less take a prefix: see Message).
  bool covers(const Limits& need) const;
};

struct Header {
  std::string name;   // as written
  std::string value;  // unfolded, RFC 2047 encoded-words decoded to UTF-8
};

// A leaf part that is not text/*, its transfer encoding undone: what the OCR filter sniffs for images.
struct Part {
  std::string content_type;  // declared "type/subtype", lower-case ("" when none was declared)
  std::string filename;      // from Content-Disposition or Content-Type name=, "" when none
  std::string data;          // decoded content
};

// Nesting followed when reading text and binary parts: deeper parts are never read (a message
// whose structure() says `unread` has some), whatever the Limits.
inline constexpr size_t kMaxDepth = 32;

// The shape of the MIME tree, for the message-level structure limit (filters/structure_gate.h).
struct Structure {
  size_t depth = 0;     // deepest nesting seen: 0 = one part; each multipart or attached message adds 1
  size_t nodes = 0;     // parts seen: every multipart, attached message and leaf, the top one included
  bool unread = false;  // parts nested deeper than kMaxDepth exist: their content was not read
  // Whether the message is beyond the limits' max_depth / max_nodes (when asked), or has unread parts.
  bool exceeds(const Limits& l) const {
    return unread || (l.max_depth && depth > l.max_depth) || (l.max_nodes && nodes > l.max_nodes);
  }
};

// One GMime parse of a message, immutable afterwards (share it as shared_ptr<const Message>).
// CPU-heavy on big messages: parse on the worker pool.
class Message {
 public:
  static Message parse(std::string_view raw, const Limits& limits);

  // Every header of the top-level header block, in order, all occurrences; only headers lying
  // entirely within the first limits.header_octets octets of the header block.
  const std::vector<Header>& headers() const { return headers_; }
  // The decoded text of every text/* part (any depth, including attached messages), in order,
  // transfer encoding (base64, quoted-printable) undone and charset converted to UTF-8; text/html
  // as its HTML source. Parts are joined with '\n'; at most limits.text_octets octets. The text
  // kept with a smaller limit is a prefix of this one: text().substr(0, smaller).
  const std::string& text() const { return text_; }
  // Every non-text leaf part (any depth, including attached messages), in order: at most
  // limits.max_parts parts and limits.part_octets decoded octets in all (a part that would pass
  // the byte bound ends the walk).
  const std::vector<Part>& binary_parts() const { return parts_; }
  // The tree's depth and part count. Exact when the parse was asked for them (limits.max_depth /
  // max_nodes) and the message is within them; once past one of them the walk may stop counting,
  // so the figures are then lower bounds that still exceed the limit. Not asked: what was walked.
  const Structure& structure() const { return structure_; }
  const Limits& limits() const { return limits_; }

 private:
  Limits limits_;
  std::vector<Header> headers_;
  std::string text_;
  std::vector<Part> parts_;
  Structure structure_;
};

// How many times Message::parse ran in this process (for tests and benchmarks: one per message).
uint64_t parse_count();

}  // namespace filters::mime
