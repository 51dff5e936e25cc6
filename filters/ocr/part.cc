// read_part: the decoding and OCR of one part, moved out of the filter so that the worker process
// runs exactly what the in-process path runs.
#include "filters/ocr/part.h"

#include <fmt/format.h>
#include <leptonica/allheaders.h>

#include "filters/ocr/image.h"
#include "filters/ocr/pdf.h"

namespace filters::ocr {
namespace {
using Clock = std::chrono::steady_clock;

// "" when the picture gives no usable perceptual hash (dhash 0 also means "could not convert").
std::string perceptual_key(const Pix* p) {
  uint64_t d = image::dhash(p);
  return d ? fmt::format("p:{}x{}:{:016x}", pixGetWidth(p), pixGetHeight(p), d) : std::string();
}

void read_view(const Pix* view, const PartJob& job, Clock::time_point deadline, PartSink& sink,
               const std::atomic<bool>* cancel) {
  std::string key = job.keys ? image::pixel_hash(view) : std::string();
  std::string pkey = job.keys && job.perceptual ? perceptual_key(view) : std::string();
  if (sink.cached(key, pkey)) return;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  auto cap = std::chrono::milliseconds(job.image_timeout_ms);
  image::PixPtr prepared = image::prepare(view, job.upscale_below);
  if (!prepared) {
    sink.read("", false);
    return;
  }
  Recognition r = recognize(prepared.get(), job.engine, std::min(left, cap), cancel);
  sink.read(r.text, r.ok && !r.timed_out && !r.cancelled);
}

}  // namespace

void read_part(std::string_view bytes, const PartJob& job, PartSink& sink, const std::atomic<bool>* cancel) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(job.budget_ms);
  PartHeader h;
  if (job.kind == PartKind::Pdf) {
    pdf::Guards g;
    g.max_pages = job.pdf_max_pages;
    g.render_dpi = job.pdf_dpi;
    g.max_pixels = std::min<uint64_t>(job.max_pixels, job.max_decoded_bytes);
    pdf::Extracted e = pdf::extract(bytes, g);
    h.pdf_status = static_cast<uint8_t>(e.status);
    h.pdf_text = std::move(e.text);
    for (const auto& page : e.renders)
      h.decoded_bytes += static_cast<uint64_t>(pixGetWidth(page.get())) * pixGetHeight(page.get());
    h.views = static_cast<uint32_t>(std::min<size_t>(e.renders.size(), job.max_views));
    h.over_limit = static_cast<uint32_t>(e.renders.size() - h.views);
    sink.decoded(h);
    for (uint32_t i = 0; i < h.views; ++i) {
      if (cancel && cancel->load(std::memory_order_relaxed)) return;
      read_view(e.renders[i].get(), job, deadline, sink, cancel);
    }
    return;
  }
  image::Guards g;
  g.max_pixels = job.max_pixels;
  g.min_width = job.min_width;
  g.min_height = job.min_height;
  g.max_decoded_bytes = job.max_decoded_bytes;
  g.max_frames = job.max_frames;
  image::Decoded d = image::decode(bytes, g);
  h.image_status = static_cast<uint8_t>(d.status);
  h.detail = std::move(d.detail);
  h.decoded_bytes = d.decoded_bytes;
  h.views = d.status == image::Status::Ok ? static_cast<uint32_t>(d.views.size()) : 0;
  sink.decoded(h);
  for (uint32_t i = 0; i < h.views; ++i) {
    if (cancel && cancel->load(std::memory_order_relaxed)) return;
    read_view(d.views[i].get(), job, deadline, sink, cancel);
  }
}

}  // namespace filters::ocr
