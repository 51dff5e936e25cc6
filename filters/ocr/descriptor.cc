// The ocr filter as the program sees it: the [ocr] rows, the requirement of a word list, the
// filter built on the worker pool and the OCR result cache (kept across reloads, its bounds set by
// the generation that uses it), the farm's shared cache in Redis (kept per Redis connection), the
// Tesseract language check and Redis (passive) for /health, and the counters.
#include "filters/ocr/descriptor.h"

#include "config/setters.h"
#include "core/log.h"
#include "filters/ocr/engine.h"
#include "filters/ocr/ocr_filter.h"
#include "filters/ocr/shared_cache.h"
#include "redis/from_config.h"

namespace filters::ocr {
namespace {
using namespace config::setters;
using config::Config;
using config::Listener;
constexpr const char* kName = "ocr";

template <class Get>
Setter one_of(Get get, std::vector<std::string> allowed) {
  std::vector<std::pair<std::string, std::string>> names;
  for (auto& a : allowed) names.emplace_back(a, a);
  return enum_param(get, names);
}

std::vector<config::Parameter> rows() {
  return {
      {"ocr", "words_file", "string", "(required for ocr)", "Word list matched against the text read from images: one word or phrase per line, optionally \"= weight\"; '#' comments. Re-read on reload.",
       string_param(field(kName, &Settings::words_file))},
      {"ocr", "language", "string", "eng", "Tesseract language(s), e.g. \"eng+deu\" (needs tesseract-ocr-LANG).",
       string_param(field(kName, &Settings::language))},
      {"ocr", "datapath", "string", "\"\" (Tesseract's default)", "Directory holding LANG.traineddata.",
       string_param(field(kName, &Settings::datapath))},
      {"ocr", "page_seg_mode", "string", "auto", "Tesseract page segmentation: \"auto\", \"single_block\" or \"sparse_text\".",
       one_of(field(kName, &Settings::page_seg_mode), {"auto", "single_block", "sparse_text"})},
      {"ocr", "match_threshold", "number", "0.25", "Fuzzy match: largest normalised edit distance (0 = exact) between a list entry and the text read.",
       number_param(field(kName, &Settings::match_threshold), 0, 0.5)},
      {"ocr", "score_base", "number", "3", "Score of the first hit.",
       number_param(field(kName, &Settings::score_base), 0, 1000)},
      {"ocr", "score_per_hit", "number", "1", "Score of each further unit of hit weight.",
       number_param(field(kName, &Settings::score_per_hit), 0, 1000)},
      {"ocr", "score_max", "number", "10", "Cap of the OCR score.",
       number_param(field(kName, &Settings::score_max), 0, 1000)},
      {"ocr", "reject_score", "number", "0", "OCR score at or above which the message is refused at once (554 5.7.1); 0 = only the profile's scores decide.",
       number_param(field(kName, &Settings::reject_score), 0, 1000)},
      {"ocr", "mismatch_score", "number", "0.5", "Score of an image whose declared Content-Type disagrees with its content.",
       number_param(field(kName, &Settings::mismatch_score), 0, 1000)},
      {"ocr", "max_images", "integer", "8", "Images read per message; more are skipped and counted.",
       size_param(field(kName, &Settings::max_images), 1, 1000)},
      {"ocr", "max_pixels", "integer", "16000000", "Largest image (width x height, or a GIF's screen) decoded; larger ones are skipped (decompression bombs).",
       size_param(field(kName, &Settings::max_pixels), 1024, 1000000000)},
      {"ocr", "min_width", "integer", "24", "Narrower images are not read (tracking pixels, spacers).",
       size_param(field(kName, &Settings::min_width), 1, 100000)},
      {"ocr", "min_height", "integer", "12", "Lower images are not read.",
       size_param(field(kName, &Settings::min_height), 1, 100000)},
      {"ocr", "max_decoded_bytes", "integer", "67108864", "Pixel octets decoded per message, all images and frames.",
       size_param(field(kName, &Settings::max_decoded_bytes), 65536, (int64_t{1} << 40))},
      {"ocr", "max_frames", "integer", "64", "Frames of an animated GIF decoded.",
       size_param(field(kName, &Settings::max_frames), 1, 10000)},
      {"ocr", "upscale_below", "integer", "150", "Images whose shorter side is below this many pixels are scaled 2x before OCR (0 = never).",
       size_param(field(kName, &Settings::upscale_below), 0, 100000)},
      {"ocr", "pdf_max_pages", "integer", "3", "PDF attachments: pages read from the first (their text layer is matched; a page without text is rendered and OCR'd as an image); 0 = PDFs are not read.",
       size_param(field(kName, &Settings::pdf_max_pages), 0, 1000)},
      {"ocr", "pdf_dpi", "integer", "100", "Resolution of the pictures of text-less PDF pages (lowered for a page past ocr.max_pixels).",
       size_param(field(kName, &Settings::pdf_dpi), 30, 600)},
      {"ocr", "image_timeout", "seconds", "3", "OCR time of one image; past it the image's text so far is used, and a worker process still busy 0.5 s later (Tesseract looks at the clock only while it reads words) is killed.",
       seconds_param(field(kName, &Settings::image_timeout), 0.01, 600)},
      {"ocr", "budget", "seconds", "10", "OCR time of one message, from the start of the check (waiting in the OCR queue included); past it the filter judges what it read and counts the rest as skipped; 0.5 s past it the worker process is killed (keep it below ocr.timeout).",
       seconds_param(field(kName, &Settings::budget), 0.01, 3600)},
      {"ocr", "workers", "integer", "2", "Messages read at once: threads of the OCR's own pool (never the shared [workers] pool), each driving one OCR worker process (mxfront --ocr-worker) that decodes, renders and runs Tesseract. Set at start; a reload does not change it.",
       size_param(field(kName, &Settings::workers), 1, 256)},
      {"ocr", "queue", "integer", "32", "Messages waiting for an OCR thread; past it the check fails at once (on_error). A message that waited past ocr.budget is dropped unread. Set at start.",
       size_param(field(kName, &Settings::queue), 0, 100000)},
      {"ocr", "memory_limit", "integer", "1073741824", "Address space of an OCR worker process (RLIMIT_AS, octets; 0 = none); a worker past it fails its part (on_error). Not applied in ASan/TSan builds.",
       size_param(field(kName, &Settings::memory_limit), 0, (int64_t{1} << 40))},
      {"ocr", "worker_max_parts", "integer", "1000", "An OCR worker process is replaced after reading this many images and PDFs (0 = never).",
       size_param(field(kName, &Settings::worker_max_parts), 0, 100000000)},
      {"ocr", "cache_size", "integer", "10000", "OCR results kept in memory by image hash (0 = no cache).",
       size_param(field(kName, &Settings::cache_size), 0, 10000000)},
      {"ocr", "cache_ttl", "seconds", "86400", "How long a cached OCR result is used.",
       seconds_param(field(kName, &Settings::cache_ttl), 1, 31536000)},
      {"ocr", "cache_perceptual", "boolean", "false", "Also key the cache by size + perceptual hash (dHash), so re-encoded copies of a picture hit; a rare collision reuses another picture's text.",
       bool_param(field(kName, &Settings::cache_perceptual))},
      {"ocr", "shared_cache", "boolean", "true", "With a [redis] section: the farm shares OCR results in Redis (key <redis.key_prefix>ocr:<image hash>), looked up after the local cache and before the OCR worker, so a picture is read once per farm; Redis down or slow (past redis.timeout): this instance's cache and OCR alone (fail open, counted). Without [redis], or false: the local cache only.",
       bool_param(field(kName, &Settings::shared_cache))},
      {"ocr", "shared_cache_ttl", "seconds", "(ocr.cache_ttl)", "How long Redis keeps a shared OCR result (0 = ocr.cache_ttl). Without [redis]: unused.",
       seconds_param(field(kName, &Settings::shared_cache_ttl), 0, 31536000)},
      {"ocr", "shared_cache_max_text", "integer", "8192", "Longest text (octets) shared in Redis: a longer text read here is kept locally only, and a longer value read from Redis is ignored (counted as an error). Without [redis]: unused.",
       size_param(field(kName, &Settings::shared_cache_max_text), 0, 1048576)},

  };
}

constexpr const char* kRuntime = "ocr.runtime";

WorkerProcs::Options worker_options(const Settings& s) {
  WorkerProcs::Options o;
  o.memory_limit = s.memory_limit;
  o.max_parts = s.worker_max_parts;
  o.engine = {s.language, s.datapath, s.page_seg_mode};
  return o;
}

// The farm's shared cache: with [redis] and ocr.shared_cache, one per Redis connection, kept
// across generations (a reload that keeps the connection keeps the store); else null.
std::shared_ptr<SharedCache> shared_for(const BuildContext& b, std::string& err) {
  const Config& c = *b.config;
  if (!c.sections.get<Settings>(kName).shared_cache) return nullptr;
  auto rc = redis::client_config(c.redis, err);
  if (!rc) return nullptr;
  return b.resources.keep<SharedCache>(redis::store_key("ocr.shared_cache", rc, c.redis, 0), [&] {
    return std::make_shared<SharedCache>(redis_store(*rc, c.redis.key_prefix));
  });
}

Built build(const BuildContext& b) {
  const Settings& s = b.config->sections.get<Settings>(kName);
  std::string shared_err;
  auto shared = shared_for(b, shared_err);
  if (!shared_err.empty()) return {nullptr, "ocr: " + shared_err};
  auto ttl = std::chrono::duration_cast<ResultCache::Clock::duration>(s.cache_ttl);
  auto cache = b.resources.keep<ResultCache>(kName, [&] { return std::make_shared<ResultCache>(s.cache_size, ttl); });
  auto runtime = b.resources.keep<Runtime>(kRuntime, [&] {
    return std::make_shared<Runtime>(s.workers, s.queue, worker_options(s));
  });
  if (runtime->pool->threads() != s.workers || runtime->pool->queue_limit() != s.queue)
    core::log().warn("ocr: ocr.workers and ocr.queue are set at start; keeping {} and {}", runtime->pool->threads(),
                     runtime->pool->queue_limit());
  std::string err;
  auto f = OcrFilter::build(s, runtime->pool, cache, err, runtime->procs, std::move(shared));
  if (f) {
    cache->configure(s.cache_size, ttl);
    runtime->procs->configure(worker_options(s));
  }
  return {f, err};
}

std::vector<core::Dependency> dependencies(const BuildContext& b) {
  const Settings& s = b.config->sections.get<Settings>(kName);
  EngineSettings e{s.language, s.datapath, s.page_seg_mode};
  std::weak_ptr<Runtime> rt = b.resources.kept<Runtime>(kRuntime);
  std::vector<core::Dependency> deps;
  std::string err;
  if (auto shared = shared_for(b, err))
    deps.push_back(redis::store_dependency("ocr", b.config->redis, [shared] { return shared->down_reason(); }));
  deps.push_back({"ocr", s.language, [e, rt] {
             std::string err = check_language(e);
             if (!err.empty()) return err;
             WorkerProcs::Stats st;
             if (auto r = rt.lock()) st = r->procs->stats();
             return fmt::format("ok: tesseract {}, language {} in {}; worker processes: {} alive, {} started, {} killed at "
                                "a deadline, {} killed (cancelled), {} crashed",
                                tesseract_version(), e.language, tessdata_dir(e), st.alive, st.spawned,
                                st.killed_deadline, st.killed_cancel, st.crashed);
           }});
  return deps;
}

}  // namespace

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = kName;
  d.schema.defaults = {config::Seconds(30), config::OnError::Continue};  // a heavy, optional opinion: failing it must not stop mail
  d.schema.rows = rows();
  d.schema.required = [](const Config& c) -> std::string {
    return c.sections.get<Settings>(kName).words_file.empty() ? "ocr.words_file is required" : "";
  };
  d.build = build;
  d.dependencies = dependencies;
  d.metrics = {{"ocr_images_total", "Image parts seen by the ocr filter, by outcome."},
               {"ocr_shared_cache_total", "OCR results shared by the farm in Redis: hit, miss, stored, too_large (not stored), error (unexpected or oversized value), fallback (Redis down or slow: not shared)."},
               {"ocr_workers_total", "OCR worker processes: spawned, killed_deadline, killed_cancelled, crashed, spawn_failed, retired."}};
  return d;
}

}  // namespace filters::ocr
