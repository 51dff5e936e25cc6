// poppler-cpp: load from memory, read the text of the first pages, render the text-less ones.
#include "filters/ocr/pdf.h"

#include <leptonica/allheaders.h>
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page-renderer.h>
#include <poppler/cpp/poppler-page.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>

namespace filters::pdf {
namespace {

void ignore(const std::string&, void*) {}

// The resolution at which a page of `w_pt` x `h_pt` points fits in `max_pixels` (at most `dpi`).
double fitting_dpi(double w_pt, double h_pt, double dpi, uint64_t max_pixels) {
  double pixels = (w_pt / 72 * dpi) * (h_pt / 72 * dpi);
  if (pixels <= static_cast<double>(max_pixels) || pixels <= 0) return dpi;
  return dpi * std::sqrt(static_cast<double>(max_pixels) / pixels) * 0.99;
}

// A poppler gray8 image as a Leptonica 8 bpp Pix (rows copied; Leptonica packs bytes big-endian
// within 32-bit words, hence SET_DATA_BYTE).
image::PixPtr to_pix(const poppler::image& im) {
  if (!im.is_valid() || im.format() != poppler::image::format_gray8 || im.width() <= 0 || im.height() <= 0) return nullptr;
  image::PixPtr pix(pixCreate(im.width(), im.height(), 8));
  if (!pix) return nullptr;
  l_uint32* data = pixGetData(pix.get());
  int wpl = pixGetWpl(pix.get());
  for (int y = 0; y < im.height(); ++y) {
    const auto* src = reinterpret_cast<const unsigned char*>(im.const_data()) + static_cast<size_t>(y) * im.bytes_per_row();
    l_uint32* line = data + static_cast<size_t>(y) * wpl;
    for (int x = 0; x < im.width(); ++x) SET_DATA_BYTE(line, x, src[x]);
  }
  return pix;
}

image::PixPtr render(const poppler::page& p, const Guards& g) {
  poppler::rectf box = p.page_rect();
  double dpi = fitting_dpi(box.width(), box.height(), g.render_dpi, g.max_pixels);
  if (dpi < 10) return nullptr;  // a page too big to be worth a picture
  poppler::page_renderer r;
  r.set_image_format(poppler::image::format_gray8);
  r.set_render_hint(poppler::page_renderer::antialiasing, true);
  r.set_render_hint(poppler::page_renderer::text_antialiasing, true);
  return to_pix(r.render_page(&p, dpi, dpi));
}

}  // namespace

void quiet_poppler() {
  static std::once_flag once;
  std::call_once(once, [] { poppler::set_debug_error_function(ignore, nullptr); });
}

bool is_pdf(std::string_view bytes) { return bytes.substr(0, 1024).find("%PDF-") != std::string_view::npos; }

Extracted extract(std::string_view bytes, const Guards& g) {
  quiet_poppler();
  Extracted out;
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) return out;
  std::unique_ptr<poppler::document> doc(
      poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
  if (!doc) return out;
  if (doc->is_locked()) {
    out.status = Extracted::Status::Locked;
    return out;
  }
  out.status = Extracted::Status::Ok;
  out.pages = static_cast<unsigned>(std::max(0, doc->pages()));
  for (unsigned i = 0; i < std::min(out.pages, g.max_pages); ++i) {
    std::unique_ptr<poppler::page> page(doc->create_page(static_cast<int>(i)));
    if (!page) continue;
    ++out.looked_at;
    poppler::byte_array utf8 = page->text().to_utf8();
    std::string text(utf8.begin(), utf8.end());
    size_t visible = std::count_if(text.begin(), text.end(), [](char c) { return !std::isspace(static_cast<unsigned char>(c)); });
    if (out.text.size() < g.max_text) out.text.append(text.substr(0, g.max_text - out.text.size())).append("\n");
    if (visible < g.min_text_per_page)
      if (image::PixPtr pix = render(*page, g)) out.renders.push_back(std::move(pix));
  }
  return out;
}

}  // namespace filters::pdf
