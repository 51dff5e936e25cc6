// PDF attachments for the ocr filter (poppler-cpp, never a hand-written PDF parser): the text layer
// of the first pages, and the pages that carry (almost) no text rendered to grey pictures, so an
// image-only PDF can be read by Tesseract under the same guards as an image.
// Contract: pure, thread-safe (each call owns its poppler document), no Asio; at most
// Guards::max_pages pages are looked at and each render is bounded by Guards::max_pixels (the
// resolution is lowered for big pages). Parsing itself cannot be interrupted: the page bound and
// the filter's timeout are what bound a hostile PDF.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filters/ocr/image.h"

namespace filters::pdf {

bool is_pdf(std::string_view bytes);  // "%PDF-" within the first 1024 octets

struct Guards {
  unsigned max_pages = 3;               // pages looked at, from the first
  size_t max_text = 65536;              // octets of text kept
  unsigned render_dpi = 100;            // resolution of the pictures of text-less pages
  uint64_t max_pixels = 16'000'000;     // per rendered page; the resolution is lowered to fit
  size_t min_text_per_page = 16;        // a page with less text than this is rendered
};

struct Extracted {
  enum class Status { Ok, Corrupt, Locked } status = Status::Corrupt;
  std::string text;                     // the text layer of the pages looked at (UTF-8)
  unsigned pages = 0;                   // pages in the document
  unsigned looked_at = 0;
  std::vector<image::PixPtr> renders;   // 8-bit grey pictures of the text-less pages looked at
};

Extracted extract(std::string_view bytes, const Guards& g);

// Poppler prints parse errors to stderr; this silences it once per process (thread-safe).
void quiet_poppler();

}  // namespace filters::pdf
