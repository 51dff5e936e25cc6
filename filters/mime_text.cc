// GMime-based extraction of header values and text parts (rules) and binary parts (ocr).
#include "filters/mime_text.h"

#include <gmime/gmime.h>

#include <cctype>
#include <memory>
#include <mutex>

namespace filters::mime {
namespace {

constexpr int kMaxDepth = 32;  // nested multiparts / attached messages followed

struct Unref {
  void operator()(gpointer p) const { if (p) g_object_unref(p); }
};
template <class T>
using GPtr = std::unique_ptr<T, Unref>;

struct GFree {
  void operator()(char* p) const { g_free(p); }
};

// Parses `text` as a message; null when GMime cannot make a message of it.
GPtr<GMimeMessage> parse(std::string_view text) {
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(text.data(), text.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  return GPtr<GMimeMessage>(g_mime_parser_construct_message(parser.get(), nullptr));
}

// The header block (without the blank line), cut at the last line end before `limit`.
std::string_view header_block(std::string_view message, size_t limit) {
  if (message.starts_with('\n')) return {};  // no header at all
  size_t end = message.find("\n\n");
  std::string_view block = message.substr(0, end == std::string_view::npos ? message.size() : end + 1);
  if (block.size() <= limit) return block;
  size_t cut = block.rfind('\n', limit);
  return cut == std::string_view::npos ? std::string_view{} : block.substr(0, cut + 1);
}

// Appends at most what is left of `limit`; false once the limit is reached.
bool append_limited(std::string& out, std::string_view text, size_t limit) {
  if (!out.empty() && out.size() < limit) out += '\n';
  size_t room = limit > out.size() ? limit - out.size() : 0;
  out.append(text.substr(0, room));
  return out.size() < limit;
}

// Depth-first walk over the MIME tree, appending text parts; false once the limit is reached.
bool collect(GMimeObject* obj, std::string& out, size_t limit, int depth) {
  if (!obj || depth > kMaxDepth) return true;
  if (GMIME_IS_MULTIPART(obj)) {
    auto* mp = GMIME_MULTIPART(obj);
    int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; ++i)
      if (!collect(g_mime_multipart_get_part(mp, i), out, limit, depth + 1)) return false;
    return true;
  }
  if (GMIME_IS_MESSAGE_PART(obj)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    return !inner || collect(g_mime_message_get_mime_part(inner), out, limit, depth + 1);
  }
  if (!GMIME_IS_TEXT_PART(obj)) return true;
  std::unique_ptr<char, GFree> text(g_mime_text_part_get_text(GMIME_TEXT_PART(obj)));
  return !text || append_limited(out, text.get(), limit);
}

struct PartWalk {
  std::vector<Part>& out;
  size_t max_parts;
  size_t bytes_left;
};

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

// Depth-first walk collecting non-text leaf parts; false once a bound is reached.
bool collect_parts(GMimeObject* obj, PartWalk& w, int depth) {
  if (!obj || depth > kMaxDepth) return true;
  if (GMIME_IS_MULTIPART(obj)) {
    auto* mp = GMIME_MULTIPART(obj);
    int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; ++i)
      if (!collect_parts(g_mime_multipart_get_part(mp, i), w, depth + 1)) return false;
    return true;
  }
  if (GMIME_IS_MESSAGE_PART(obj)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    return !inner || collect_parts(g_mime_message_get_mime_part(inner), w, depth + 1);
  }
  if (!GMIME_IS_PART(obj) || GMIME_IS_TEXT_PART(obj)) return true;
  if (w.out.size() >= w.max_parts) return false;
  Part p;
  std::unique_ptr<char, GFree> type(g_mime_content_type_get_mime_type(g_mime_object_get_content_type(obj)));
  if (g_mime_object_get_header(obj, "Content-Type")) p.content_type = lower(type.get());
  const char* name = g_mime_part_get_filename(GMIME_PART(obj));
  p.filename = name ? name : "";
  if (!decoded_content(GMIME_PART(obj), p.data, w.bytes_left)) return false;
  w.bytes_left -= p.data.size();
  w.out.push_back(std::move(p));
  return true;
}

}  // namespace

void ensure_init() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

std::vector<Header> headers(std::string_view message, size_t limit) {
  ensure_init();
  std::vector<Header> out;
  std::string block(header_block(message, limit));
  if (block.empty()) return out;
  block += '\n';  // the end of the header block: GMime reads no body
  // Parsed as a part, not a message: a message moves the Content-* headers to its MIME part.
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(block.data(), block.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  GPtr<GMimeObject> part(g_mime_parser_construct_part(parser.get(), nullptr));
  if (!part) return out;
  GMimeHeaderList* list = g_mime_object_get_header_list(part.get());
  int n = g_mime_header_list_get_count(list);
  for (int i = 0; i < n; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    const char* name = g_mime_header_get_name(h);
    const char* value = g_mime_header_get_value(h);
    out.push_back({name ? name : "", value ? value : ""});
  }
  return out;
}

std::string body_text(std::string_view message, size_t limit) {
  ensure_init();
  std::string out;
  if (limit == 0) return out;
  GPtr<GMimeMessage> msg = parse(message);
  if (!msg) return out;
  collect(g_mime_message_get_mime_part(msg.get()), out, limit, 0);
  return out;
}

}  // namespace filters::mime

namespace filters::mime {

std::vector<Part> binary_parts(std::string_view message, size_t max_parts, size_t max_bytes) {
  ensure_init();
  std::vector<Part> out;
  if (max_parts == 0) return out;
  GPtr<GMimeMessage> msg = parse(message);
  if (!msg) return out;
  PartWalk w{out, max_parts, max_bytes};
  collect_parts(g_mime_message_get_mime_part(msg.get()), w, 0);
  return out;
}

}  // namespace filters::mime
