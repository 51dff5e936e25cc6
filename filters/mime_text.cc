// One GMime parse of a message: the top-level header list, then one walk over the MIME tree
// collecting the decoded text parts (rules) and the decoded binary parts (ocr).
#include "filters/mime_text.h"

#include <gmime/gmime.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <memory>
#include <mutex>

namespace filters::mime {
namespace {

std::atomic<uint64_t> parses{0};

struct Unref {
  void operator()(gpointer p) const { if (p) g_object_unref(p); }
};
template <class T>
using GPtr = std::unique_ptr<T, Unref>;

struct GFree {
  void operator()(char* p) const { g_free(p); }
};

// The length of the header block cut at the last line end before `limit` ("" when the message
// starts with its body).
size_t header_cut(std::string_view message, size_t limit) {
  if (message.starts_with('\n')) return 0;  // no header at all
  size_t end = message.find("\n\n");
  size_t block = end == std::string_view::npos ? message.size() : end + 1;
  if (block <= limit) return block;
  size_t cut = message.rfind('\n', limit);
  return cut == std::string_view::npos ? 0 : cut + 1;
}

// Where the header starting at `offset` ends: after its last line (continuation lines included).
size_t header_end(std::string_view message, size_t offset) {
  size_t pos = offset;
  while (true) {
    pos = message.find('\n', pos);
    if (pos == std::string_view::npos) return message.size();
    ++pos;
    if (pos >= message.size() || (message[pos] != ' ' && message[pos] != '\t')) return pos;
  }
}

std::string lower(const char* s) {
  std::string r = s ? s : "";
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// The decoded content of a leaf part, or false when it does not fit in what is left.
bool decoded_content(GMimePart* part, std::string& data, size_t room) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (!content) return true;
  GPtr<GMimeStream> mem(g_mime_stream_mem_new());
  if (g_mime_data_wrapper_write_to_stream(content, mem.get()) < 0) return true;  // undecodable: empty
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
  if (!bytes) return true;
  if (bytes->len > room) return false;
  data.assign(reinterpret_cast<const char*>(bytes->data), bytes->len);
  return true;
}

// One depth-first walk over the MIME tree filling both the text and the binary parts, each until
// its own bound is reached.
struct Walk {
  std::string& text;
  size_t text_limit;
  std::vector<Part>& parts;
  size_t max_parts;
  size_t bytes_left;
  Structure& structure;
  const Limits& limits;
  bool text_done = false, parts_done = false;

  bool done() const { return text_done && parts_done; }
  // The structure is asked for: the walk goes on after the content is kept, until the whole tree
  // was seen or it is known to be beyond a limit.
  bool counting() const { return limits.max_depth || limits.max_nodes; }
  bool finished() const { return done() && (!counting() || structure.exceeds(limits)); }

  // Appends at most what is left of the text limit.
  void add_text(std::string_view t) {
    if (!text.empty() && text.size() < text_limit) text += '\n';
    size_t room = text_limit > text.size() ? text_limit - text.size() : 0;
    text.append(t.substr(0, room));
    if (text.size() >= text_limit) text_done = true;
  }

  void add_part(GMimeObject* obj) {
    if (parts.size() >= max_parts) {
      parts_done = true;
      return;
    }
    Part p;
    std::unique_ptr<char, GFree> type(g_mime_content_type_get_mime_type(g_mime_object_get_content_type(obj)));
    if (g_mime_object_get_header(obj, "Content-Type")) p.content_type = lower(type.get());
    const char* name = g_mime_part_get_filename(GMIME_PART(obj));
    p.filename = name ? name : "";
    if (!decoded_content(GMIME_PART(obj), p.data, bytes_left)) {
      parts_done = true;
      return;
    }
    bytes_left -= p.data.size();
    parts.push_back(std::move(p));
  }

  void visit(GMimeObject* obj, size_t depth) {
    if (!obj || finished()) return;
    ++structure.nodes;
    structure.depth = std::max(structure.depth, depth);
    if (depth > kMaxDepth) {  // never read, and never silently: the message says so
      structure.unread = true;
      return;
    }
    if (GMIME_IS_MULTIPART(obj)) {
      auto* mp = GMIME_MULTIPART(obj);
      int n = g_mime_multipart_get_count(mp);
      for (int i = 0; i < n && !finished(); ++i) visit(g_mime_multipart_get_part(mp, i), depth + 1);
      return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
      if (inner) visit(g_mime_message_get_mime_part(inner), depth + 1);
      return;
    }
    if (GMIME_IS_TEXT_PART(obj)) {
      if (text_done) return;
      std::unique_ptr<char, GFree> t(g_mime_text_part_get_text(GMIME_TEXT_PART(obj)));
      if (t) add_text(t.get());
      return;
    }
    if (GMIME_IS_PART(obj) && !parts_done) add_part(obj);
  }
};

}  // namespace

// GMime's object types register and build their classes lazily, on first use. The first parse is
// done here, inside the once, so no two pool threads build a class at the same time (GLib locks
// that internally, but ThreadSanitizer cannot see GLib's locks and the once makes it plain).
void warm_types() {
  static constexpr std::string_view sample =
      "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nx\n"
      "--b\nContent-Type: message/rfc822\n\nSubject: y\n\ny\n"
      "--b\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\neA==\n--b--\n";
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(sample.data(), sample.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GPtr<GMimeObject> top(g_mime_parser_construct_part(parser.get(), nullptr));
  std::string text;
  std::vector<Part> parts;
  Structure structure;
  Limits all{1024, 1024, 8, 1024, 8, 64};
  g_mime_header_list_get_count(g_mime_object_get_header_list(top.get()));
  Walk w{text, all.text_octets, parts, all.max_parts, all.part_octets, structure, all};
  w.visit(top.get(), 0);
}

void ensure_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_mime_init();
    warm_types();
  });
}

Limits Limits::merge(const Limits& a, const Limits& b) {
  return {std::max(a.header_octets, b.header_octets), std::max(a.text_octets, b.text_octets),
          std::max(a.max_parts, b.max_parts),         std::max(a.part_octets, b.part_octets),
          std::max(a.max_depth, b.max_depth),         std::max(a.max_nodes, b.max_nodes)};
}

bool Limits::covers(const Limits& need) const {
  // A structure bound is answered by a parse that counted at least that far.
  auto counted = [](size_t have, size_t want) { return !want || have >= want; };
  return header_octets >= need.header_octets && text_octets >= need.text_octets && max_parts >= need.max_parts &&
         part_octets >= need.part_octets && counted(max_depth, need.max_depth) && counted(max_nodes, need.max_nodes);
}

uint64_t parse_count() { return parses.load(std::memory_order_relaxed); }

Message Message::parse(std::string_view raw, const Limits& limits) {
  Message m;
  m.limits_ = limits;
  if (limits.empty()) return m;
  ensure_init();
  parses.fetch_add(1, std::memory_order_relaxed);
  // Only headers wanted: GMime reads no more than the header block cut at the limit.
  std::string_view input = raw;
  std::string block;
  size_t cut = header_cut(raw, limits.header_octets);
  if (!limits.text_octets && !limits.max_parts && !limits.max_depth && !limits.max_nodes) {
    block.assign(raw.substr(0, cut));
    block += '\n';
    input = block;
  } else if (!raw.empty() && !raw.starts_with('\n') && !raw.ends_with('\n') && raw.find("\n\n") == std::string_view::npos) {
    // All header, cut short at the end: GMime may drop every header of a block whose last line
    // has no line end (found by mime_fuzz), so end it as the headers-only parse does.
    block.assign(raw);
    block += '\n';
    input = block;
  }
  // Parsed as a part, not a message: a message moves the Content-* headers to its MIME part,
  // and the header rules must see the top-level header block as written, in order.
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(input.data(), input.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GPtr<GMimeObject> top(g_mime_parser_construct_part(parser.get(), nullptr));
  if (!top) return m;

  if (cut > 0) {
    bool whole = cut == header_cut(raw, raw.size());  // the usual case: no offsets to check
    GMimeHeaderList* list = g_mime_object_get_header_list(top.get());
    int n = g_mime_header_list_get_count(list);
    for (int i = 0; i < n; ++i) {
      GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
      if (!whole) {
        gint64 offset = g_mime_header_get_offset(h);
        if (offset < 0 || static_cast<uint64_t>(offset) >= cut) break;
        if (header_end(raw, static_cast<size_t>(offset)) > cut) break;
      }
      const char* name = g_mime_header_get_name(h);
      const char* value = g_mime_header_get_value(h);
      m.headers_.push_back({name ? name : "", value ? value : ""});
    }
  }

  Walk w{m.text_, limits.text_octets, m.parts_, limits.max_parts, std::min(limits.part_octets, raw.size()),
         m.structure_, limits};
  w.text_done = limits.text_octets == 0;
  w.parts_done = limits.max_parts == 0;
  w.visit(top.get(), 0);
  return m;
}

}  // namespace filters::mime
