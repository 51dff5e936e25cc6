// OCR at Data: one pool job per message walks the images in order, spending at most the message
// budget; each image's text comes from this instance's cache, then the farm's (Redis), or from
// Tesseract; the words found decide.
#include "filters/ocr/ocr_filter.h"

#include <fmt/format.h>

#include <leptonica/allheaders.h>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>

#include "core/log.h"
#include "core/metrics.h"
#include "filters/mime_text.h"
#include "filters/parsed_message.h"
#include "filters/ocr/engine.h"
#include "filters/ocr/part.h"
#include "filters/ocr/image.h"
#include "filters/ocr/pdf.h"
#include "core/text.h"

namespace filters {
namespace R = core::replies;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxParts = 256;  // binary parts looked at per message (each is cheap to sniff)

// ocr_images_total{outcome=...}: what became of each image part.
void count_image(std::string_view outcome) {
  static std::mutex mu;
  static std::map<std::string, core::LabeledCounter*, std::less<>> counters;
  core::LabeledCounter* c;
  {
    std::lock_guard lk(mu);
    auto it = counters.find(outcome);
    if (it == counters.end())
      it = counters.emplace(std::string(outcome),
                            core::labeled_counter("ocr_images_total", core::labels({{"outcome", outcome}}))).first;
    c = it->second;
  }
  core::count(c);
}

ocr::EngineSettings engine_settings(const ocr::Settings& s) { return {s.language, s.datapath, s.page_seg_mode}; }

using End = ocr::WorkerProcs::End;

ocr::SharedLimits shared_limits(const ocr::Settings& s) {
  auto ttl = s.shared_cache_ttl > ocr::Seconds::zero() ? s.shared_cache_ttl : s.cache_ttl;
  return {s.shared_cache_max_text, std::chrono::duration_cast<std::chrono::milliseconds>(ttl)};
}

// What the server hears of one part: the header, then each view's text from this instance's
// cache, the farm's (stored locally too) or Tesseract (texts appended to the message's text;
// complete texts stored in both caches).
class Collector final : public ocr::PartSink {
 public:
  struct View {
    bool from_cache = false;
    bool from_farm = false;  // the farm's shared cache answered
    bool complete = true;
  };
  Collector(ocr::ResultCache* cache, ocr::SharedCache* shared, const ocr::Settings& s, std::string& text)
      : cache_(cache), shared_(shared), limits_(shared_limits(s)), text_(text) {}
  void decoded(const ocr::PartHeader& h) override {
    header = h;
    have_header = true;
    if (!h.pdf_text.empty()) text_ += h.pdf_text;
  }
  bool cached(const std::string& key, const std::string& pkey) override {
    key_ = key;
    pkey_ = pkey;
    std::optional<std::string> hit;
    if (cache_ && !key.empty()) hit = cache_->get(key);
    if (cache_ && !hit && !pkey.empty()) hit = cache_->get(pkey);
    bool farm = false;
    if (!hit && shared_ && (hit = shared_->get(key, pkey, limits_))) {
      farm = true;
      store_locally(*hit);
    }
    if (!hit) return false;
    text_ += *hit + "\n";
    views.push_back({true, farm, true});
    return true;
  }
  void read(const std::string& text, bool complete) override {
    text_ += text + "\n";
    views.push_back({false, false, complete});
    if (!complete) return;
    store_locally(text);
    if (shared_) shared_->put(key_, pkey_, text, limits_);
  }
  ocr::PartHeader header;
  bool have_header = false;
  std::vector<View> views;

 private:
  void store_locally(const std::string& text) {
    if (!cache_) return;
    if (!key_.empty()) cache_->put(key_, text);
    if (!pkey_.empty()) cache_->put(pkey_, text);
  }
  ocr::ResultCache* cache_;
  ocr::SharedCache* shared_;
  ocr::SharedLimits limits_;
  std::string& text_;
  std::string key_, pkey_;
};

ocr::PartJob part_job(const ocr::Settings& s, ocr::PartKind kind, uint64_t bytes_left, size_t read,
                      Clock::time_point deadline, bool cache) {
  ocr::PartJob j;
  j.kind = kind;
  j.max_pixels = s.max_pixels;
  j.max_decoded_bytes = bytes_left;
  j.min_width = static_cast<uint32_t>(s.min_width);
  j.min_height = static_cast<uint32_t>(s.min_height);
  j.max_frames = static_cast<uint32_t>(s.max_frames);
  j.pdf_max_pages = static_cast<uint32_t>(s.pdf_max_pages);
  j.pdf_dpi = static_cast<uint32_t>(s.pdf_dpi);
  j.max_views = static_cast<uint32_t>(read < s.max_images ? s.max_images - read : 0);
  j.upscale_below = static_cast<uint32_t>(s.upscale_below);
  j.keys = cache;
  j.perceptual = cache && s.cache_perceptual;
  j.image_timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(s.image_timeout).count();
  j.budget_ms = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
  j.engine = engine_settings(s);
  return j;
}

// A part that did not end Done: counted in the report (the verdict then cannot rely on silence).
void note_end(OcrFilter::Report& r, End e, const std::string& detail, Clock::time_point deadline) {
  if (e == End::Deadline) {
    ++r.killed;
    if (Clock::now() >= deadline) r.budget_spent = true;
  } else if (e == End::Crashed) {
    ++r.worker_failures;
    r.worker_error = detail;
  }
}

std::string_view end_outcome(End e) { return e == End::Deadline ? "killed" : "worker_failed"; }

}  // namespace

OcrFilter::OcrFilter(ocr::Settings settings, ocr::WordList words, std::shared_ptr<net::BlockingPool> pool,
                     std::shared_ptr<ocr::ResultCache> cache, std::shared_ptr<ocr::WorkerProcs> procs,
                     std::shared_ptr<ocr::SharedCache> shared)
    : settings_(std::make_shared<const ocr::Settings>(std::move(settings))),
      words_(std::make_shared<const ocr::WordList>(std::move(words))),
      pool_(std::move(pool)),
      cache_(std::move(cache)),
      procs_(std::move(procs)),
      shared_(std::move(shared)) {}

std::shared_ptr<OcrFilter> OcrFilter::build(const ocr::Settings& settings, std::shared_ptr<net::BlockingPool> pool,
                                            std::shared_ptr<ocr::ResultCache> cache, std::string& error,
                                            std::shared_ptr<ocr::WorkerProcs> procs,
                                            std::shared_ptr<ocr::SharedCache> shared) {
  ocr::ParseResult words = ocr::load_words(settings.words_file);
  if (!words.list) {
    error = "ocr: " + words.error;
    return nullptr;
  }
  if (std::string e = ocr::check_language(engine_settings(settings)); !e.empty()) {
    error = "ocr: " + e;
    return nullptr;
  }
  return std::make_shared<OcrFilter>(settings, std::move(*words.list), std::move(pool), std::move(cache), std::move(procs),
                                     std::move(shared));
}

namespace {

// A PDF attachment: its text layer joins the text; its text-less pages are read like images.
void read_pdf(std::string_view data, const ocr::Settings& s, ocr::ResultCache* cache, ocr::SharedCache* shared,
              Clock::time_point deadline, const OcrFilter::ReadPart& read_part, uint64_t& bytes_left,
              OcrFilter::Report& r) {
  if (Clock::now() >= deadline) {
    r.budget_spent = true;
    ++r.skipped;
    count_image("over_budget");
    return;
  }
  Collector c(cache, shared, s, r.text);
  std::string detail;
  End e = read_part(data, part_job(s, ocr::PartKind::Pdf, bytes_left, r.read, deadline, cache || shared), c, deadline,
                    detail);
  if (e == End::Cancelled) {
    r.cancelled = true;
    return;
  }
  if (!c.have_header) {  // killed or dead while parsing
    ++r.skipped;
    note_end(r, e, detail, deadline);
    count_image(end_outcome(e));
    return;
  }
  auto status = static_cast<pdf::Extracted::Status>(c.header.pdf_status);
  if (status != pdf::Extracted::Status::Ok) {
    ++r.skipped;
    count_image(status == pdf::Extracted::Status::Locked ? "pdf_locked" : "pdf_corrupt");
    return;
  }
  ++r.pdfs;
  count_image("pdf");
  bytes_left -= std::min(bytes_left, c.header.decoded_bytes);
  r.images += c.header.views + c.header.over_limit;
  for (uint32_t i = 0; i < c.header.over_limit; ++i) {
    ++r.skipped;
    count_image("over_limit");
  }
  for (uint32_t i = 0; i < c.header.views; ++i) {
    if (i >= c.views.size()) {  // the worker ended before this page was read
      ++r.skipped;
      count_image(end_outcome(e));
      continue;
    }
    const auto& v = c.views[i];
    ++r.read;
    if (v.from_cache) ++r.cached;
    if (v.from_farm) ++r.cached_farm;
    if (!v.complete && Clock::now() >= deadline) r.budget_spent = true;
    count_image(v.from_farm ? "cached_farm" : v.from_cache ? "cached" : v.complete ? "read" : "cut_short");
  }
  if (e != End::Done) note_end(r, e, detail, deadline);
}

}  // namespace

namespace {
// Whether a part of `m` is a picture or a PDF the filter would read.
bool has_candidates(const mime::Message& m, const ocr::Settings& s) {
  const auto& parts = m.binary_parts();
  for (size_t i = 0; i < parts.size() && i < kMaxParts; ++i)
    if (image::sniff(parts[i].data) != image::Format::Unknown || (s.pdf_max_pages > 0 && pdf::is_pdf(parts[i].data)))
      return true;
  return false;
}
}  // namespace

mime::Limits OcrFilter::mime_needs() const { return needs(); }

mime::Limits OcrFilter::needs() {
  mime::Limits l;
  l.max_parts = kMaxParts;
  l.part_octets = SIZE_MAX;  // the parse never keeps more decoded octets than the message has
  return l;
}

OcrFilter::Report OcrFilter::analyse(std::string_view message, const ocr::Settings& s, const ocr::WordList& words,
                                     ocr::ResultCache* cache, const std::atomic<bool>* cancel) {
  return analyse(mime::Message::parse(message, needs()), s, words, cache, cancel);
}

OcrFilter::Report OcrFilter::analyse(const mime::Message& message, const ocr::Settings& s, const ocr::WordList& words,
                                     ocr::ResultCache* cache, const std::atomic<bool>* cancel,
                                     ocr::SharedCache* shared) {
  ReadPart in_process = [cancel](std::string_view bytes, const ocr::PartJob& job, ocr::PartSink& sink,
                                 Clock::time_point, std::string&) {
    ocr::read_part(bytes, job, sink, cancel);
    return cancel && cancel->load(std::memory_order_relaxed) ? End::Cancelled : End::Done;
  };
  return analyse(message, s, words, cache, cancel, in_process, Clock::now(), shared);
}

OcrFilter::Report OcrFilter::analyse(const mime::Message& message, const ocr::Settings& s, const ocr::WordList& words,
                                     ocr::ResultCache* cache, const std::atomic<bool>* cancel, const ReadPart& read_part,
                                     Clock::time_point start, ocr::SharedCache* shared) {
  Report r;
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(s.budget);
  uint64_t bytes_left = s.max_decoded_bytes;
  const auto& parts = message.binary_parts();
  // A shared parse may keep more parts than this filter reads.
  for (size_t i = 0; i < parts.size() && i < kMaxParts && !r.cancelled; ++i) {
    const mime::Part& part = parts[i];
    image::Format found = image::sniff(part.data);
    image::Format declared = image::declared_format(part.content_type);
    if (found == image::Format::Unknown) {
      if (s.pdf_max_pages > 0 && pdf::is_pdf(part.data)) {
        read_pdf(part.data, s, cache, shared, deadline, read_part, bytes_left, r);
        continue;
      }
      if (declared != image::Format::Unknown) r.mismatch = true;  // says image, is not one
      continue;
    }
    ++r.images;
    if (declared != image::Format::Unknown && declared != found) r.mismatch = true;
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      r.cancelled = true;
      break;
    }
    if (r.read >= s.max_images) {
      ++r.skipped;
      count_image("over_limit");
      continue;
    }
    if (Clock::now() >= deadline) {
      ++r.skipped;
      r.budget_spent = true;
      count_image("over_budget");
      continue;
    }
    Collector c(cache, shared, s, r.text);
    std::string detail;
    End e = read_part(part.data, part_job(s, ocr::PartKind::Image, bytes_left, r.read, deadline, cache || shared), c,
                      deadline, detail);
    if (e == End::Cancelled) {
      r.cancelled = true;
      break;
    }
    if (!c.have_header) {  // killed or dead while decoding
      ++r.skipped;
      note_end(r, e, detail, deadline);
      count_image(end_outcome(e));
      continue;
    }
    bytes_left -= std::min(bytes_left, c.header.decoded_bytes);
    auto status = static_cast<image::Status>(c.header.image_status);
    if (status != image::Status::Ok) {
      ++r.skipped;
      count_image(image::status_name(status));
      core::log().debug("ocr: {} image {} skipped: {} ({})", image::format_name(found), core::quoted_for_log(part.filename),
                        image::status_name(status), c.header.detail);
      if (e != End::Done) note_end(r, e, detail, deadline);
      continue;
    }
    bool all_cached = c.views.size() == c.header.views, complete = e == End::Done && c.views.size() == c.header.views;
    bool farm = false;
    for (const auto& v : c.views) {
      all_cached = all_cached && v.from_cache;
      complete = complete && v.complete;
      farm = farm || v.from_farm;
    }
    ++r.read;
    if (all_cached) ++r.cached;
    if (all_cached && farm) ++r.cached_farm;
    if (!complete && Clock::now() >= deadline) r.budget_spent = true;
    if (e != End::Done) note_end(r, e, detail, deadline);
    count_image(e != End::Done ? end_outcome(e)
                : all_cached       ? (farm ? "cached_farm" : "cached")
                : complete         ? "read"
                                   : "cut_short");
  }
  r.hits = ocr::match(words, r.text, s.match_threshold);
  r.score = ocr::score(r.hits, {s.score_base, s.score_per_hit, s.score_max});
  r.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return r;
}

Verdict OcrFilter::verdict(const Report& r, const ocr::Settings& s) {
  if (r.cancelled) return Verdict::failure("ocr: cancelled");
  if (r.dropped) return Verdict::failure("ocr: waited past its budget in the OCR queue; nothing read");
  Verdict v;
  std::string words;
  for (const auto& h : r.hits) words += (words.empty() ? "" : ", ") + h.phrase;
  if (!r.hits.empty()) {
    std::string tag_words;
    for (const auto& h : r.hits) {
      std::string w = h.phrase;
      for (char& c : w)
        if (c == ' ') c = '_';
      tag_words += (tag_words.empty() ? "" : ",") + w;
    }
    v.score = r.score;
    v.tags.push_back(fmt::format("OCR_WORDS={:g}:{}", r.score, tag_words));
    v.reason = fmt::format("ocr: image text matches {}", words);
    if (s.reject_score > 0 && r.score >= s.reject_score) {
      v.action = Action::Reject;
      v.reply = R::image_spam(words);
      return v;
    }
  } else if (r.worker_failures > 0) {
    return Verdict::failure(fmt::format("ocr: could not judge: {}", r.worker_error));
  } else if (r.budget_spent || r.killed > 0) {
    return Verdict::failure(fmt::format("ocr: budget spent after {} of {} images ({} killed at the deadline), nothing matched",
                                        r.read, r.images, r.killed));
  }
  if (r.mismatch && s.mismatch_score > 0) {
    v.score += s.mismatch_score;
    v.tags.push_back(fmt::format("OCR_TYPE_MISMATCH={:g}", s.mismatch_score));
    if (v.reason.empty()) v.reason = "ocr: declared image type disagrees with the content";
  }
  return v;
}

boost::asio::awaitable<Verdict> OcrFilter::check(Phase, std::shared_ptr<const Context> ctx) {
  if (!ctx->message) co_return Verdict::failure("ocr: no message");
  // A message whose parse is ready (rules made it) and holds no picture and no PDF is judged here,
  // without waiting for an OCR thread behind hostile pictures (sniffing is a few octet compares).
  if (ctx->parsed && ctx->parsed->limits().covers(needs()))
    if (auto m = ctx->parsed->ready(); m && !has_candidates(*m, *settings_)) {
      ReadPart none = [](std::string_view, const ocr::PartJob&, ocr::PartSink&, Clock::time_point, std::string&) {
        return End::Crashed;  // never called: no part to read
      };
      co_return verdict(analyse(*m, *settings_, *words_, nullptr, &ctx->cancel->flag, none, Clock::now()), *settings_);
    }
  const auto accepted = Clock::now();
  auto job = [settings = settings_, words = words_, cache = cache_, shared = shared_, procs = procs_,
              pool = pool_.get(), ctx, accepted]() -> Report {
    Report r;
    if (ctx->cancel->cancelled()) {
      r.cancelled = true;
      return r;
    }
    // The budget runs from the check's start: a job that waited it out in the queue is dropped.
    if (Clock::now() >= accepted + std::chrono::duration_cast<Clock::duration>(settings->budget)) {
      r.dropped = true;
      count_image("dropped");
      return r;
    }
    // The message's one MIME parse, shared with the other filters (made here if nobody made it yet).
    std::shared_ptr<const mime::Message> m = parsed_message(*ctx, needs());
    const std::atomic<bool>* cancel = &ctx->cancel->flag;
    if (!procs) return analyse(*m, *settings, *words, cache.get(), cancel, shared.get());
    size_t slot = pool->thread_index().value_or(0);
    ReadPart in_worker = [&procs, slot, cancel](std::string_view bytes, const ocr::PartJob& j, ocr::PartSink& sink,
                                                Clock::time_point deadline, std::string& detail) {
      return procs->run_part(slot, bytes, j, sink, deadline, cancel, detail);
    };
    return analyse(*m, *settings, *words, cache.get(), cancel, in_worker, accepted, shared.get());
  };
  std::optional<Report> r = co_await pool_->run(std::move(job));
  if (!r) {
    count_image("queue_full");
    co_return Verdict::failure("ocr: OCR queue full");
  }
  if (r->images > 0 || r->pdfs > 0 || r->skipped > 0 || r->dropped || r->killed > 0 || r->worker_failures > 0) {
    std::string words;
    for (const auto& h : r->hits) words += fmt::format("{}{}~\"{}\"", words.empty() ? "" : " ", h.phrase, h.seen);
    core::log().info("ocr id={} images={} read={} cached={} skipped={} pdfs={} mismatch={} budget_spent={} killed={} "
                     "worker_failures={} dropped={} cached_farm={} score={:g} words=[{}] ms={:.0f}",
                     ctx->session_id, r->images, r->read, r->cached, r->skipped, r->pdfs, r->mismatch, r->budget_spent,
                     r->killed, r->worker_failures, r->dropped, r->cached_farm, r->score, words, r->ms);
  }
  co_return verdict(*r, *settings_);
}

}  // namespace filters
