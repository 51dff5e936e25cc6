// One thread_local tesseract::TessBaseAPI per worker thread; recognition under an ETEXT_DESC
// monitor whose deadline and cancel callback bound it.
#include "filters/ocr/engine.h"

#include <leptonica/allheaders.h>
#include <tesseract/baseapi.h>
#include <tesseract/ocrclass.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <sstream>

namespace filters::ocr {
namespace {

std::atomic<uint64_t> g_engines{0};

tesseract::PageSegMode psm_of(const std::string& s) {
  if (s == "single_block") return tesseract::PSM_SINGLE_BLOCK;
  if (s == "sparse_text") return tesseract::PSM_SPARSE_TEXT;
  return tesseract::PSM_AUTO;
}

struct ThreadEngine {
  std::unique_ptr<tesseract::TessBaseAPI> api;
  std::string language, datapath;
  bool failed = false;  // Init failed for these settings: don't retry on every image
};

thread_local ThreadEngine t_engine;

// The engine for `s` on this thread, or nullptr (with `error`) when Tesseract cannot start.
tesseract::TessBaseAPI* engine_for(const EngineSettings& s, std::string& error) {
  ThreadEngine& e = t_engine;
  if (e.api && e.language == s.language && e.datapath == s.datapath) return e.api.get();
  if (!e.api && e.failed && e.language == s.language && e.datapath == s.datapath) {
    error = "tesseract could not load language " + s.language;
    return nullptr;
  }
  e.api.reset();
  e.language = s.language;
  e.datapath = s.datapath;
  auto api = std::make_unique<tesseract::TessBaseAPI>();
  // Quiet: the library prints "Empty page!!" and DPI warnings to stderr otherwise.
  api->SetVariable("debug_file", "/dev/null");
  if (api->Init(s.datapath.empty() ? nullptr : s.datapath.c_str(), s.language.c_str(), tesseract::OEM_LSTM_ONLY) != 0) {
    e.failed = true;
    error = "tesseract could not load language " + s.language;
    return nullptr;
  }
  e.failed = false;
  e.api = std::move(api);
  g_engines.fetch_add(1, std::memory_order_relaxed);
  return e.api.get();
}

bool cancel_cb(void* flag, int) { return static_cast<const std::atomic<bool>*>(flag)->load(std::memory_order_relaxed); }

}  // namespace

Recognition recognize(const Pix* prepared, const EngineSettings& s, std::chrono::milliseconds deadline,
                      const std::atomic<bool>* cancel) {
  Recognition r;
  if (deadline.count() <= 0) {
    r.timed_out = true;
    return r;
  }
  tesseract::TessBaseAPI* api = engine_for(s, r.error);
  if (!api) return r;
  api->SetPageSegMode(psm_of(s.page_seg_mode));
  api->SetImage(const_cast<Pix*>(prepared));
  api->SetSourceResolution(300);
  tesseract::ETEXT_DESC monitor;
  monitor.set_deadline_msecs(static_cast<int32_t>(std::min<int64_t>(deadline.count(), INT32_MAX)));
  if (cancel) {
    monitor.cancel = cancel_cb;
    monitor.cancel_this = const_cast<std::atomic<bool>*>(cancel);
  }
  api->Recognize(&monitor);  // non-zero when stopped early: the text so far is still there
  r.timed_out = monitor.deadline_exceeded();
  r.cancelled = cancel && cancel->load(std::memory_order_relaxed);
  std::unique_ptr<char[]> text(api->GetUTF8Text());
  if (text) r.text = text.get();
  r.confidence = api->MeanTextConf();
  api->Clear();  // drop the image and results, keep the loaded model
  r.ok = true;
  return r;
}

std::string warm_up(const EngineSettings& s) {
  std::string error;
  engine_for(s, error);
  return error;
}

std::string tessdata_dir(const EngineSettings& s) {
  if (!s.datapath.empty()) return s.datapath;
  if (const char* env = std::getenv("TESSDATA_PREFIX"); env && *env) return env;
  return "/usr/share/tesseract-ocr/5/tessdata";
}

std::string check_language(const EngineSettings& s) {
  if (s.language.empty()) return "ocr.language is empty";
  std::string dir = tessdata_dir(s);
  std::stringstream langs(s.language);
  for (std::string lang; std::getline(langs, lang, '+');) {
    std::string file = dir + "/" + lang + ".traineddata";
    if (lang.empty() || access(file.c_str(), R_OK) != 0)
      return "no Tesseract data for language '" + lang + "': " + file + " is missing (install tesseract-ocr-" + lang + ")";
  }
  return {};
}

std::string tesseract_version() { return tesseract::TessBaseAPI::Version(); }

uint64_t engines_created() { return g_engines.load(std::memory_order_relaxed); }

}  // namespace filters::ocr
