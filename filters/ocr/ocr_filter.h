// The OCR filter, at Data: on the worker pool it walks the message's binary parts (from the
// message's shared MIME parse, filters/parsed_message.h), finds images by content, decodes them
// under guards (image.h), reads them with Tesseract (engine.h) within a per-image cap and a
// per-message budget, reusing cached results by image hash (cache.h), and matches the text against
// the word list (words.h). PDF attachments (pdf.h) give their text layer, and their text-less
// pages are read like images.
// Verdict: hits -> score (capped) with tag OCR_WORDS=score:word,word fed to the chain, or
// 554 5.7.1 at once at ocr.reject_score; a declared type that lies about the content adds
// ocr.mismatch_score. Budget spent before anything matched: Verdict::failure (on_error, default
// continue). Worker queue full: 451 4.3.0. Skipped for allowlisted clients.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "filters/ocr/settings.h"
#include "filters/filter.h"
#include "filters/ocr/cache.h"
#include "filters/ocr/words.h"
#include "net/blocking_pool.h"

namespace filters {

class OcrFilter final : public Filter {
 public:
  // What one message gave; analyse() is pure apart from the cache and counters (for tests).
  struct Report {
    std::vector<ocr::Hit> hits;
    double score = 0;          // from the hits (before the mismatch score)
    size_t images = 0;         // parts whose content is an image (PDF pages rendered included)
    size_t pdfs = 0;           // PDF attachments read
    size_t read = 0;           // images whose text was obtained (OCR or cache)
    size_t cached = 0;         // of which every view came from the cache
    size_t skipped = 0;        // guards, max_images, budget
    bool mismatch = false;     // a declared image type disagrees with the content
    bool budget_spent = false; // an image was skipped or cut short by the message budget
    bool cancelled = false;
    double ms = 0;             // time spent
    std::string text;          // everything read, for the log at debug level
  };

  // Loads the word list and checks the Tesseract language; null with `error` when either fails.
  static std::shared_ptr<OcrFilter> build(const ocr::Settings& settings, std::shared_ptr<net::BlockingPool> workers,
                                          std::shared_ptr<ocr::ResultCache> cache, std::string& error);

  std::string_view name() const override { return "ocr"; }
  bool wants(Phase p) const override { return p == Phase::Data; }
  bool skipped_when_allowlisted() const override { return true; }
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

  mime::Limits mime_needs() const override;  // the binary parts

  // `message` raw (parsed here, for tests) or the message's shared parse (at least needs()).
  static Report analyse(std::string_view message, const ocr::Settings& s, const ocr::WordList& words,
                        ocr::ResultCache* cache, const std::atomic<bool>* cancel);
  static Report analyse(const mime::Message& message, const ocr::Settings& s, const ocr::WordList& words,
                        ocr::ResultCache* cache, const std::atomic<bool>* cancel);
  static mime::Limits needs();
  static Verdict verdict(const Report& r, const ocr::Settings& s);

  OcrFilter(ocr::Settings settings, ocr::WordList words, std::shared_ptr<net::BlockingPool> workers,
            std::shared_ptr<ocr::ResultCache> cache);

 private:
  std::shared_ptr<const ocr::Settings> settings_;
  std::shared_ptr<const ocr::WordList> words_;
  std::shared_ptr<net::BlockingPool> workers_;
  std::shared_ptr<ocr::ResultCache> cache_;
};

}  // namespace filters
