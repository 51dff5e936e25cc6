// Unit tests for the farm's shared OCR cache with a fake store: hit, miss, a too large text not
// stored, an oversized or unexpected value ignored, an unreachable store passed by (fail open), and,
// through OcrFilter::analyse with a fake part reader, the order local cache -> farm -> OCR, a farm
// hit stored locally and counted as cached_farm, and a text read stored in both caches.
#include "filters/ocr/shared_cache.h"

#include <gtest/gtest.h>
#include <leptonica/allheaders.h>

#include <map>

#include "core/base64.h"
#include "filters/ocr/ocr_filter.h"
#include "filters/ocr/image.h"

namespace filters::ocr {
namespace {
using namespace std::chrono_literals;

// A store in a map; `unreachable` makes every lookup fail as a dead Redis would.
struct FakeStore final : SharedStore {
  FakeStore(std::map<std::string, std::string>* v, std::vector<std::vector<std::string>>* g,
            std::vector<std::chrono::milliseconds>* t, bool* u)
      : values(v), gets(g), ttls(t), unreachable(u) {}
  std::map<std::string, std::string>* values;
  std::vector<std::vector<std::string>>* gets;
  std::vector<std::chrono::milliseconds>* ttls;
  bool* unreachable;
  StoreReply get(const std::vector<std::string>& keys) override {
    gets->push_back(keys);
    if (*unreachable) return {StoreReply::Status::Unreachable, {}, "not connected"};
    for (const auto& k : keys)
      if (auto it = values->find(k); it != values->end()) return {StoreReply::Status::Hit, it->second, {}};
    return {};
  }
  void set(const std::string& key, const std::string& text, std::chrono::milliseconds ttl) override {
    if (*unreachable) return;  // lost, as a SET to a dead Redis is
    (*values)[key] = text;
    ttls->push_back(ttl);
  }
  std::string down_reason() const override { return *unreachable ? "down" : ""; }
  std::string name() const override { return "fake"; }
};

struct Farm {
  std::map<std::string, std::string> values;
  std::vector<std::vector<std::string>> gets;
  std::vector<std::chrono::milliseconds> ttls;
  bool unreachable = false;
  SharedCache cache{std::unique_ptr<SharedStore>(std::make_unique<FakeStore>(&values, &gets, &ttls, &unreachable))};
};

const SharedLimits kLimits{16, 60s};

TEST(SharedCache, MissThenStoredThenHit) {
  Farm f;
  EXPECT_EQ(f.cache.get("k", "", kLimits), std::nullopt);
  f.cache.put("k", "", "cheap viagra", kLimits);
  ASSERT_EQ(f.ttls.size(), 1u);
  EXPECT_EQ(f.ttls[0], 60s);
  EXPECT_EQ(f.cache.get("k", "", kLimits), "cheap viagra");
}

TEST(SharedCache, BothKeysAskedInOneLookupAndStoredEach) {
  Farm f;
  f.cache.put("k", "p:1", "text", kLimits);
  EXPECT_EQ(f.values.size(), 2u);
  f.values.erase("k");
  EXPECT_EQ(f.cache.get("k", "p:1", kLimits), "text");  // a re-encoded copy: the perceptual key hits
  ASSERT_EQ(f.gets.size(), 1u);
  EXPECT_EQ(f.gets[0], (std::vector<std::string>{"k", "p:1"}));
}

TEST(SharedCache, TooLargeTextIsNotStoredAndOversizedValueIsIgnored) {
  Farm f;
  f.cache.put("k", "", std::string(17, 'x'), kLimits);
  EXPECT_TRUE(f.values.empty());
  f.values["k"] = std::string(1 << 20, 'x');  // written by someone else: untrusted
  EXPECT_EQ(f.cache.get("k", "", kLimits), std::nullopt);
}

TEST(SharedCache, NoKeysAskNothingAndAnUnreachableStoreIsAMiss) {
  Farm f;
  EXPECT_EQ(f.cache.get("", "", kLimits), std::nullopt);
  EXPECT_EQ(f.cache.get(std::string(1000, 'k'), "", kLimits), std::nullopt);  // no sane key
  EXPECT_TRUE(f.gets.empty());
  f.values["k"] = "text";
  f.unreachable = true;
  EXPECT_EQ(f.cache.get("k", "", kLimits), std::nullopt);
  EXPECT_EQ(f.cache.down_reason(), "down");
  f.unreachable = false;
  EXPECT_EQ(f.cache.get("k", "", kLimits), "text");
}

// -- through the filter's walk: a fake part reader that "reads" every view it is not given ------

std::string blank_png() {
  PIX* pix = pixCreate(300, 80, 8);
  pixSetAllArbitrary(pix, 255);
  l_uint8* data = nullptr;
  size_t size = 0;
  pixWriteMem(&data, &size, pix, IFF_PNG);
  pixDestroy(&pix);
  std::string out(reinterpret_cast<char*>(data), size);
  lept_free(data);
  return out;
}

struct Walk {
  mime::Message msg = mime::Message::parse(
      "From: a@example.net\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\n"
      "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n" + core::base64_encode(blank_png()) + "\n--B--\n",
      OcrFilter::needs());
  WordList words = *parse_words("cheap viagra = 2\nbuy now\n", "test").list;
  Settings s;
  int ocr_reads = 0;
  OcrFilter::Report run(ResultCache* local, SharedCache* shared) {
    OcrFilter::ReadPart fake = [this](std::string_view, const PartJob& j, PartSink& sink, OcrFilter::Clock::time_point,
                                      std::string&) {
      EXPECT_TRUE(j.keys);
      PartHeader h;
      h.image_status = static_cast<uint8_t>(image::Status::Ok);
      h.views = 1;
      sink.decoded(h);
      if (!sink.cached("pixels", "")) {
        ++ocr_reads;
        sink.read("CHEAP VIAGRA BUY NOW", true);
      }
      return WorkerProcs::End::Done;
    };
    std::atomic<bool> cancel{false};
    return OcrFilter::analyse(msg, s, words, local, &cancel, fake, OcrFilter::Clock::now(), shared);
  }
};

TEST(SharedCacheWalk, ReadOnceByTheFarmThenAFarmHitStoredLocally) {
  Farm f;
  Walk a, b;
  ResultCache local_a(100, 1h), local_b(100, 1h);
  auto ra = a.run(&local_a, &f.cache);  // instance A reads and shares
  EXPECT_EQ(a.ocr_reads, 1);
  EXPECT_EQ(ra.cached, 0u);
  EXPECT_EQ(f.values.at("pixels"), "CHEAP VIAGRA BUY NOW");
  EXPECT_EQ(f.ttls.at(0), std::chrono::milliseconds(86400000));  // ocr.shared_cache_ttl 0 = ocr.cache_ttl
  auto rb = b.run(&local_b, &f.cache);  // instance B: a farm hit, no OCR
  EXPECT_EQ(b.ocr_reads, 0);
  EXPECT_EQ(rb.cached, 1u);
  EXPECT_EQ(rb.cached_farm, 1u);
  EXPECT_EQ(rb.hits.size(), 2u);
  EXPECT_EQ(local_b.get("pixels"), "CHEAP VIAGRA BUY NOW");  // kept locally
  size_t gets = f.gets.size();
  auto again = b.run(&local_b, &f.cache);  // local first: the farm is not asked
  EXPECT_EQ(f.gets.size(), gets);
  EXPECT_EQ(again.cached, 1u);
  EXPECT_EQ(again.cached_farm, 0u);
}

TEST(SharedCacheWalk, FarmDownTheWorkerReadsAndTooLongTextsStayLocal) {
  Farm f;
  f.unreachable = true;
  Walk a;
  ResultCache local(100, 1h);
  auto r = a.run(&local, &f.cache);
  EXPECT_EQ(a.ocr_reads, 1);
  EXPECT_EQ(r.hits.size(), 2u);  // judged all the same (fail open)
  f.unreachable = false;
  Walk b;
  b.s.shared_cache_max_text = 4;
  b.s.shared_cache_ttl = std::chrono::seconds(5);
  ResultCache local_b(100, 1h);
  b.run(&local_b, &f.cache);
  EXPECT_EQ(b.ocr_reads, 1);
  EXPECT_TRUE(f.values.empty());  // longer than ocr.shared_cache_max_text: not shared
  EXPECT_EQ(local_b.get("pixels"), "CHEAP VIAGRA BUY NOW");
}

}  // namespace
}  // namespace filters::ocr
