// One image or PDF part read for OCR: decoded under the guards (or its PDF pages extracted and the
// text-less ones rendered), each view looked up in the cache and, when unknown, read by Tesseract.
// read_part() does the work and tells a PartSink what happens, step by step; the sink is either
// the filter itself (in-process, for tests and benchmarks) or the OCR worker process's link to the
// filter (filters/ocr/worker.*), which turns every call into a frame on its socket. So the cache
// stays in the server while the hostile parsers and Tesseract run in a killable helper process.
// Contract: no Asio, no shared state; read_part is as thread-safe as the sink.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "filters/ocr/engine.h"

namespace filters::ocr {

enum class PartKind : uint8_t { Image = 1, Pdf = 2 };

// What one part needs: its guards and its time (all plain values: it crosses a process boundary).
struct PartJob {
  PartKind kind = PartKind::Image;
  uint64_t max_pixels = 16'000'000;
  uint64_t max_decoded_bytes = 64ull << 20;  // what is left of the message's decoded-bytes bound
  uint32_t min_width = 24, min_height = 12, max_frames = 64;
  uint32_t pdf_max_pages = 3, pdf_dpi = 100;
  uint32_t max_views = 8;                    // PDF: page pictures that may still be read (max_images - read)
  uint32_t upscale_below = 150;
  bool keys = true;                          // compute cache keys (false: no cache)
  bool perceptual = false;                   // also a perceptual key
  int64_t image_timeout_ms = 3000;           // OCR time of one view
  int64_t budget_ms = 10000;                 // what is left of the message budget when the part starts
  EngineSettings engine;
};

// What read_part found before reading any view.
struct PartHeader {
  uint8_t image_status = 0;                  // image::Status (images)
  std::string detail;                        // why an image was refused, for the log
  uint64_t decoded_bytes = 0;                // pixel octets decoded (images and page pictures)
  uint8_t pdf_status = 0;                    // pdf::Extracted::Status (PDFs)
  std::string pdf_text;                      // the PDF's text layer
  uint32_t views = 0;                        // views that follow (images: 0 unless Ok)
  uint32_t over_limit = 0;                   // PDF page pictures past max_views (not read)
};

class PartSink {
 public:
  virtual ~PartSink() = default;
  virtual void decoded(const PartHeader& h) = 0;
  // Before view i is read: true when its text is already known (cached), so it is not read.
  virtual bool cached(const std::string& key, const std::string& perceptual_key) = 0;
  // View i was read; `complete` false when cut short (deadline, cancel) or the engine failed.
  virtual void read(const std::string& text, bool complete) = 0;
};

// Reads `bytes` as `job` says. `cancel` (may be null) stops it between views and inside Tesseract.
void read_part(std::string_view bytes, const PartJob& job, PartSink& sink, const std::atomic<bool>* cancel);

}  // namespace filters::ocr
