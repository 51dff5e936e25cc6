// Tesseract for the OCR filter: one engine per calling thread, created on first use (Init takes
// ~150 ms) and kept for the thread's life, re-created only when the language or data path change.
// Contract: call recognize() from worker-pool threads only (it runs tens of milliseconds of CPU);
// the process must run with OMP_THREAD_LIMIT=1 (app/main.cc sees to it), or Debian's OpenMP build
// of Tesseract starts 4 threads per recognition and costs 8x the CPU (bench/README.md, OCR);
// thread-safe because no engine is shared; a recognition stops at its deadline or when `cancel`
// becomes true, returning the text read so far.
#pragma once
#include <atomic>
#include <chrono>
#include <string>

struct Pix;  // Leptonica

namespace filters::ocr {

struct EngineSettings {
  std::string language = "eng";
  std::string datapath;                  // empty = Tesseract's default
  std::string page_seg_mode = "auto";    // "auto" | "single_block" | "sparse_text"
};

struct Recognition {
  bool ok = false;                       // the engine ran (text may still be empty)
  bool timed_out = false;                // stopped at the deadline: text is partial
  bool cancelled = false;                // stopped because `cancel` was set
  std::string text;                      // UTF-8
  int confidence = 0;                    // Tesseract's mean word confidence, 0-100
  std::string error;                     // when !ok
};

// Reads `prepared` (8-bit grey, see image::prepare). Deadline <= 0 ms: not started, timed_out.
Recognition recognize(const Pix* prepared, const EngineSettings& s, std::chrono::milliseconds deadline,
                      const std::atomic<bool>* cancel);

// Loads this thread's engine for `s` now (the OCR worker process does it at start, before any part
// arrives). "" or why it failed.
std::string warm_up(const EngineSettings& s);

// "" when LANG.traineddata exists for every language of `s` in its data path, else what is missing
// (checked when a config is loaded, so a missing language pack is a config error, not a mail error).
std::string check_language(const EngineSettings& s);
// The data path Tesseract will use for `s`.
std::string tessdata_dir(const EngineSettings& s);
std::string tesseract_version();

// Engines created so far in this process (one per thread that ran recognize()).
uint64_t engines_created();

}  // namespace filters::ocr
