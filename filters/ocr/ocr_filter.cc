// OCR at Data: one pool job per message walks the images in order, spending at most the message
// budget; each image's text comes from the cache or from Tesseract; the words found decide.
#include "filters/ocr/ocr_filter.h"

#include <fmt/format.h>

#include <leptonica/allheaders.h>

#include <chrono>
#include <map>
#include <mutex>

#include "core/log.h"
#include "core/metrics.h"
#include "filters/mime_text.h"
#include "filters/parsed_message.h"
#include "filters/ocr/engine.h"
#include "filters/ocr/image.h"
#include "filters/ocr/pdf.h"

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

image::Guards guards(const ocr::Settings& s, uint64_t bytes_left) {
  image::Guards g;
  g.max_pixels = s.max_pixels;
  g.min_width = static_cast<unsigned>(s.min_width);
  g.min_height = static_cast<unsigned>(s.min_height);
  g.max_decoded_bytes = bytes_left;
  g.max_frames = static_cast<unsigned>(s.max_frames);
  return g;
}

// "" when the picture gives no usable perceptual hash (dhash 0 also means "could not convert").
std::string perceptual_key(const Pix* p, unsigned w, unsigned h) {
  uint64_t d = image::dhash(p);
  return d ? fmt::format("p:{}x{}:{:016x}", w, h, d) : std::string();
}

// The text of one view: from the cache, or read now. False when it was not read in full (budget,
// per-image cap, cancelled); a partial text is still appended.
struct ViewOutcome {
  bool from_cache = false;
  bool complete = true;
};
ViewOutcome read_view(const Pix* view, const ocr::Settings& s, ocr::ResultCache* cache, Clock::time_point deadline,
                      const std::atomic<bool>* cancel, std::string& text) {
  std::string key = image::pixel_hash(view);
  std::string pkey;
  if (cache && s.cache_perceptual) pkey = perceptual_key(view, static_cast<unsigned>(pixGetWidth(view)), static_cast<unsigned>(pixGetHeight(view)));
  if (cache) {
    auto hit = cache->get(key);
    if (!hit && !pkey.empty()) hit = cache->get(pkey);
    if (hit) {
      text += *hit + "\n";
      return {true, true};
    }
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  auto cap = std::chrono::duration_cast<std::chrono::milliseconds>(s.image_timeout);
  image::PixPtr prepared = image::prepare(view, static_cast<unsigned>(s.upscale_below));
  if (!prepared) return {false, false};
  ocr::Recognition r = ocr::recognize(prepared.get(), engine_settings(s), std::min(left, cap), cancel);
  text += r.text + "\n";
  bool complete = r.ok && !r.timed_out && !r.cancelled;
  if (complete && cache) {
    cache->put(key, r.text);
    if (!pkey.empty()) cache->put(pkey, r.text);
  }
  return {false, complete};
}

}  // namespace

OcrFilter::OcrFilter(ocr::Settings settings, ocr::WordList words, std::shared_ptr<net::BlockingPool> workers,
                     std::shared_ptr<ocr::ResultCache> cache)
    : settings_(std::make_shared<const ocr::Settings>(std::move(settings))),
      words_(std::make_shared<const ocr::WordList>(std::move(words))),
      workers_(std::move(workers)),
      cache_(std::move(cache)) {}

std::shared_ptr<OcrFilter> OcrFilter::build(const ocr::Settings& settings, std::shared_ptr<net::BlockingPool> workers,
                                            std::shared_ptr<ocr::ResultCache> cache, std::string& error) {
  ocr::ParseResult words = ocr::load_words(settings.words_file);
  if (!words.list) {
    error = "ocr: " + words.error;
    return nullptr;
  }
  if (std::string e = ocr::check_language(engine_settings(settings)); !e.empty()) {
    error = "ocr: " + e;
    return nullptr;
  }
  return std::make_shared<OcrFilter>(settings, std::move(*words.list), std::move(workers), std::move(cache));
}

namespace {

// A PDF attachment: its text layer joins the text; its text-less pages are read like images.
void read_pdf(std::string_view data, const ocr::Settings& s, ocr::ResultCache* cache, Clock::time_point deadline,
              const std::atomic<bool>* cancel, uint64_t& bytes_left, OcrFilter::Report& r) {
  if (Clock::now() >= deadline) {
    r.budget_spent = true;
    ++r.skipped;
    count_image("over_budget");
    return;
  }
  pdf::Guards g;
  g.max_pages = static_cast<unsigned>(s.pdf_max_pages);
  g.render_dpi = static_cast<unsigned>(s.pdf_dpi);
  g.max_pixels = std::min<uint64_t>(s.max_pixels, bytes_left);
  pdf::Extracted e = pdf::extract(data, g);
  if (e.status != pdf::Extracted::Status::Ok) {
    ++r.skipped;
    count_image(e.status == pdf::Extracted::Status::Locked ? "pdf_locked" : "pdf_corrupt");
    return;
  }
  ++r.pdfs;
  count_image("pdf");
  r.text += e.text;
  for (const auto& page : e.renders) {
    ++r.images;
    bytes_left -= std::min<uint64_t>(bytes_left, static_cast<uint64_t>(pixGetWidth(page.get())) * pixGetHeight(page.get()));
    if (r.read >= s.max_images) {
      ++r.skipped;
      count_image("over_limit");
      continue;
    }
    ViewOutcome v = read_view(page.get(), s, cache, deadline, cancel, r.text);
    ++r.read;
    if (v.from_cache) ++r.cached;
    if (!v.complete && Clock::now() >= deadline) r.budget_spent = true;
    count_image(v.from_cache ? "cached" : v.complete ? "read" : "cut_short");
  }
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
                                     ocr::ResultCache* cache, const std::atomic<bool>* cancel) {
  Report r;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(s.budget);
  uint64_t bytes_left = s.max_decoded_bytes;
  const auto& parts = message.binary_parts();
  // A shared parse may keep more parts than this filter reads.
  for (size_t i = 0; i < parts.size() && i < kMaxParts; ++i) {
    const mime::Part& part = parts[i];
    image::Format found = image::sniff(part.data);
    image::Format declared = image::declared_format(part.content_type);
    if (found == image::Format::Unknown) {
      if (s.pdf_max_pages > 0 && pdf::is_pdf(part.data)) {
        read_pdf(part.data, s, cache, deadline, cancel, bytes_left, r);
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
    image::Decoded d = image::decode(part.data, guards(s, bytes_left));
    bytes_left -= std::min(bytes_left, d.decoded_bytes);
    if (d.status != image::Status::Ok) {
      ++r.skipped;
      count_image(image::status_name(d.status));
      core::log().debug("ocr: {} image {} skipped: {} ({})", image::format_name(found), part.filename,
                        image::status_name(d.status), d.detail);
      continue;
    }
    bool all_cached = true, complete = true;
    for (const auto& view : d.views) {
      ViewOutcome v = read_view(view.get(), s, cache, deadline, cancel, r.text);
      all_cached = all_cached && v.from_cache;
      complete = complete && v.complete;
    }
    ++r.read;
    if (all_cached) ++r.cached;
    if (!complete) {
      if (cancel && cancel->load(std::memory_order_relaxed)) {
        r.cancelled = true;
        break;
      }
      if (Clock::now() >= deadline) r.budget_spent = true;
    }
    count_image(all_cached ? "cached" : complete ? "read" : "cut_short");
  }
  r.hits = ocr::match(words, r.text, s.match_threshold);
  r.score = ocr::score(r.hits, {s.score_base, s.score_per_hit, s.score_max});
  r.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return r;
}

Verdict OcrFilter::verdict(const Report& r, const ocr::Settings& s) {
  if (r.cancelled) return Verdict::failure("ocr: cancelled");
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
  } else if (r.budget_spent) {
    return Verdict::failure(fmt::format("ocr: budget spent after {} of {} images, nothing matched", r.read, r.images));
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
  auto job = [settings = settings_, words = words_, cache = cache_, ctx]() -> Report {
    if (ctx->cancel->cancelled()) {
      Report r;
      r.cancelled = true;
      return r;
    }
    // The message's one MIME parse, shared with the other filters (made here if nobody made it yet).
    std::shared_ptr<const mime::Message> m = parsed_message(*ctx, needs());
    return analyse(*m, *settings, *words, cache.get(), &ctx->cancel->flag);
  };
  std::optional<Report> r = co_await workers_->run(std::move(job));
  if (!r) co_return Verdict{Action::TempFail, R::filter_busy(), "ocr: worker queue full"};
  if (r->images > 0 || r->pdfs > 0) {
    std::string words;
    for (const auto& h : r->hits) words += fmt::format("{}{}~\"{}\"", words.empty() ? "" : " ", h.phrase, h.seen);
    core::log().info("ocr id={} images={} read={} cached={} skipped={} pdfs={} mismatch={} budget_spent={} score={:g} words=[{}] ms={:.0f}",
                     ctx->session_id, r->images, r->read, r->cached, r->skipped, r->pdfs, r->mismatch, r->budget_spent, r->score,
                     words, r->ms);
  }
  co_return verdict(*r, *settings_);
}

}  // namespace filters
