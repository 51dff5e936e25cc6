// The OCR filter, at Data: on the worker pool it walks the message's binary parts (from the
// message's shared MIME parse, filters/parsed_message.h), finds images by content, decodes them
// under guards (image.h), reads them with Tesseract (engine.h) within a per-image cap and a
// per-message budget, reusing cached results by image hash (cache.h: this instance's; then
// shared_cache.h: the farm's, in Redis, when configured), and matches the text against
// the word list (words.h). PDF attachments (pdf.h) give their text layer, and their text-less
// pages are read like images.
// Verdict: hits -> score (capped) with tag OCR_WORDS=score:word,word fed to the chain, or
// 554 5.7.1 at once at ocr.reject_score; a declared type that lies about the content adds
// ocr.mismatch_score. Budget spent before anything matched: Verdict::failure (on_error, default
// continue). The work runs on the OCR's own bounded pool (ocr.workers threads, ocr.queue waiting),
// never on the shared worker pool, each thread driving its own OCR worker process
// (filters/ocr/worker.h) that is killed at the deadline or when the check is cancelled; a killed
// or crashed worker, a full OCR queue or a job that waited past its budget in the queue: failure
// (on_error). Skipped for allowlisted clients.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "filters/ocr/settings.h"
#include "filters/filter.h"
#include "filters/ocr/cache.h"
#include "filters/ocr/part.h"
#include "filters/ocr/shared_cache.h"
#include "filters/ocr/worker.h"
#include "filters/ocr/words.h"
#include "net/blocking_pool.h"

namespace filters {
namespace ocr {
// What the ocr filter keeps across reloads (Resources::keep): its own pool of threads that drive
// the worker processes, and the processes. Sized by the first config (a reload does not resize).
struct Runtime {
  Runtime(size_t threads, size_t queue, WorkerProcs::Options o)
      : procs(std::make_shared<WorkerProcs>(threads, std::move(o))),
        pool(std::make_shared<net::BlockingPool>("ocr", threads, queue)) {}
  std::shared_ptr<WorkerProcs> procs;      // destroyed last: the pool's threads are joined first
  std::shared_ptr<net::BlockingPool> pool;
};
}  // namespace ocr

class OcrFilter final : public Filter {
 public:
  // What one message gave; analyse() is pure apart from the cache and counters (for tests).
  struct Report {
    std::vector<ocr::Hit> hits;
    double score = 0;          // from the hits (before the mismatch score)
    size_t images = 0;         // parts whose content is an image (PDF pages rendered included)
    size_t pdfs = 0;           // PDF attachments read
    size_t read = 0;           // images whose text was obtained (OCR or cache)
    size_t cached = 0;         // of which every view came from a cache (this instance's or the farm's)
    size_t cached_farm = 0;    // of which a view came from the farm's shared cache
    size_t skipped = 0;        // guards, max_images, budget
    bool mismatch = false;     // a declared image type disagrees with the content
    bool budget_spent = false; // an image was skipped or cut short by the message budget
    bool cancelled = false;
    bool dropped = false;      // waited in the OCR queue past the budget: nothing was read
    size_t killed = 0;         // parts whose worker process was killed at its deadline
    size_t worker_failures = 0;// parts whose worker process crashed or could not start
    std::string worker_error;  // the last of those, for the verdict's reason
    double ms = 0;             // time spent
    std::string text;          // everything read, for the log at debug level
  };

  // Loads the word list and checks the Tesseract language; null with `error` when either fails.
  // `pool` runs the checks (the OCR's own pool); `procs` reads the parts in worker processes
  // (null: in this process, on the pool's threads, as tests and benchmarks do).
  static std::shared_ptr<OcrFilter> build(const ocr::Settings& settings, std::shared_ptr<net::BlockingPool> pool,
                                          std::shared_ptr<ocr::ResultCache> cache, std::string& error,
                                          std::shared_ptr<ocr::WorkerProcs> procs = nullptr,
                                          std::shared_ptr<ocr::SharedCache> shared = nullptr);

  std::string_view name() const override { return "ocr"; }
  bool wants(Phase p) const override { return p == Phase::Data; }
  bool skipped_when_allowlisted() const override { return true; }
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

  mime::Limits mime_needs() const override;  // the binary parts

  // `message` raw (parsed here, for tests) or the message's shared parse (at least needs()); the
  // parts are read in this process.
  static Report analyse(std::string_view message, const ocr::Settings& s, const ocr::WordList& words,
                        ocr::ResultCache* cache, const std::atomic<bool>* cancel);
  static Report analyse(const mime::Message& message, const ocr::Settings& s, const ocr::WordList& words,
                        ocr::ResultCache* cache, const std::atomic<bool>* cancel, ocr::SharedCache* shared = nullptr);
  // How a part is read: in this process or by a worker process (End as WorkerProcs says).
  using Clock = std::chrono::steady_clock;
  using ReadPart = std::function<ocr::WorkerProcs::End(std::string_view bytes, const ocr::PartJob& job,
                                                       ocr::PartSink& sink, Clock::time_point deadline,
                                                       std::string& detail)>;
  // The same, each part read by `read_part`; the budget runs from `start`. `shared` (null: none):
  // the farm's cache, asked after `cache` and told each complete text read.
  static Report analyse(const mime::Message& message, const ocr::Settings& s, const ocr::WordList& words,
                        ocr::ResultCache* cache, const std::atomic<bool>* cancel, const ReadPart& read_part,
                        Clock::time_point start, ocr::SharedCache* shared = nullptr);
  static mime::Limits needs();
  static Verdict verdict(const Report& r, const ocr::Settings& s);

  OcrFilter(ocr::Settings settings, ocr::WordList words, std::shared_ptr<net::BlockingPool> pool,
            std::shared_ptr<ocr::ResultCache> cache, std::shared_ptr<ocr::WorkerProcs> procs = nullptr,
            std::shared_ptr<ocr::SharedCache> shared = nullptr);

 private:
  std::shared_ptr<const ocr::Settings> settings_;
  std::shared_ptr<const ocr::WordList> words_;
  std::shared_ptr<net::BlockingPool> pool_;
  std::shared_ptr<ocr::ResultCache> cache_;
  std::shared_ptr<ocr::WorkerProcs> procs_;
  std::shared_ptr<ocr::SharedCache> shared_;  // null: no [redis] or ocr.shared_cache = false
};

}  // namespace filters
