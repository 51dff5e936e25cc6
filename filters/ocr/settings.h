// The [ocr] section: plain values, filled by the rows in descriptor.cc.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>

namespace filters::ocr {

using Seconds = std::chrono::duration<double>;

// OCR of image spam (filters/ocr): image parts found by content, decoded under guards, read by
// Tesseract on the worker pool within a time budget, matched against a word list.
struct Settings {
  std::string words_file;              // one entry per line, "phrase [= weight]"; required when ocr is in a chain
  std::string language = "eng";        // Tesseract language(s), "eng+deu"
  std::string datapath;                // tessdata directory; empty = Tesseract's default
  std::string page_seg_mode = "auto";  // "auto" | "single_block" | "sparse_text"
  double match_threshold = 0.25;       // normalised edit distance accepted as a hit
  double score_base = 3.0;             // score of the first hit
  double score_per_hit = 1.0;          // each further unit of weight
  double score_max = 10.0;             // cap of the OCR score
  double reject_score = 0;             // OCR score at or above this: 554 5.7.1 at once (0 = never)
  double mismatch_score = 0.5;         // declared image type differs from the content
  size_t max_images = 8;               // images read per message; more are skipped and counted
  size_t max_pixels = 16000000;        // per image (or GIF screen)
  size_t min_width = 24;               // smaller images (tracking pixels) are skipped
  size_t min_height = 12;
  size_t max_decoded_bytes = 67108864; // pixel octets decoded per message
  size_t max_frames = 64;              // GIF frames decoded
  size_t upscale_below = 150;          // 2x scale-up when the shorter side is below this (0 = never)
  size_t pdf_max_pages = 3;            // PDF attachments: pages read (text layer; text-less pages OCR'd); 0 = PDFs ignored
  size_t pdf_dpi = 100;                // resolution of the pictures of text-less PDF pages
  Seconds image_timeout{3};            // OCR time of one image; its worker process is killed 0.5 s past it
  Seconds budget{10};                  // OCR time of one message, from the check's start (queue included)
  size_t workers = 2;                  // OCR jobs at once: threads of the OCR's own pool, one worker process each
  size_t queue = 32;                   // OCR jobs waiting for a thread; past it: failure (on_error)
  size_t memory_limit = size_t{1} << 30;  // RLIMIT_AS of a worker process (0 = none; not applied in sanitizer builds)
  size_t worker_max_parts = 1000;      // a worker process is replaced after reading this many parts (0 = never)
  size_t cache_size = 10000;           // OCR results kept, by image hash
  Seconds cache_ttl{86400};
  bool cache_perceptual = false;       // also key the cache by a perceptual hash (size + dHash: re-encoded copies hit)
  bool shared_cache = true;            // with [redis]: the farm shares OCR results (shared_cache.h)
  Seconds shared_cache_ttl{0};         // of a text stored in Redis; 0 = cache_ttl
  size_t shared_cache_max_text = 8192; // longer texts are not shared (nor accepted from Redis)
};

}  // namespace filters::ocr
