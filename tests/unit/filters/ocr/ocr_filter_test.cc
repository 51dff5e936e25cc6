// The ocr filter's judgement (verdict) and its walk over a message (analyse) with real Leptonica and
// Tesseract on pictures made here: found by content, guards counted, the cache used, the budget kept.
#include <gtest/gtest.h>
#include <leptonica/allheaders.h>

#include <string>

#include "core/base64.h"
#include "filters/ocr/ocr_filter.h"

namespace {
using filters::Action;
using filters::OcrFilter;

filters::ocr::Settings settings() {
  filters::ocr::Settings s;
  s.reject_score = 5;
  s.mismatch_score = 0.5;
  return s;
}

filters::ocr::WordList words() {
  auto r = filters::ocr::parse_words("cheap viagra = 2\nbuy now\n", "test");
  EXPECT_TRUE(r.list) << r.error;
  return *r.list;
}

// A blank picture (no text) as PNG bytes.
std::string blank_png(int w, int h) {
  PIX* pix = pixCreate(w, h, 8);
  pixSetAllArbitrary(pix, 255);
  l_uint8* data = nullptr;
  size_t size = 0;
  pixWriteMem(&data, &size, pix, IFF_PNG);
  pixDestroy(&pix);
  std::string out(reinterpret_cast<char*>(data), size);
  lept_free(data);
  return out;
}

std::string mail_with(const std::vector<std::pair<std::string, std::string>>& parts) {  // (type, bytes)
  std::string m = "From: a@example.net\nSubject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n";
  for (const auto& [type, bytes] : parts)
    m += "--B\nContent-Type: " + type + "\nContent-Transfer-Encoding: base64\n\n" + core::base64_encode(bytes) + "\n";
  return m + "--B--\n";
}

OcrFilter::Report hits_report(std::vector<std::string> phrases, double score) {
  OcrFilter::Report r;
  for (auto& p : phrases) r.hits.push_back({p, p, 1.0, 0});
  r.score = score;
  r.images = r.read = 1;
  return r;
}

TEST(OcrVerdict, HitsScoreAndTagWithTheWords) {
  auto v = OcrFilter::verdict(hits_report({"buy now"}, 3), settings());
  EXPECT_EQ(v.action, Action::Continue);
  EXPECT_DOUBLE_EQ(v.score, 3);
  ASSERT_EQ(v.tags.size(), 1u);
  EXPECT_EQ(v.tags[0], "OCR_WORDS=3:buy_now");
}

TEST(OcrVerdict, RejectScoreRefusesAtOnceNamingTheWords) {
  auto v = OcrFilter::verdict(hits_report({"cheap viagra", "buy now"}, 6), settings());
  EXPECT_EQ(v.action, Action::Reject);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 554);
  EXPECT_NE(v.reply->text.find("cheap viagra, buy now"), std::string::npos) << v.reply->text;
}

TEST(OcrVerdict, SpentBudgetWithoutHitsIsAFailureAndWithHitsJudges) {
  OcrFilter::Report r;
  r.images = 3;
  r.budget_spent = true;
  EXPECT_TRUE(OcrFilter::verdict(r, settings()).failed);
  auto with_hits = hits_report({"buy now"}, 3);
  with_hits.budget_spent = true;
  auto v = OcrFilter::verdict(with_hits, settings());
  EXPECT_FALSE(v.failed);
  EXPECT_DOUBLE_EQ(v.score, 3);
}

TEST(OcrVerdict, MismatchAddsItsScoreAndCancelledFails) {
  OcrFilter::Report r;
  r.mismatch = true;
  auto v = OcrFilter::verdict(r, settings());
  EXPECT_DOUBLE_EQ(v.score, 0.5);
  EXPECT_EQ(v.tags, std::vector<std::string>{"OCR_TYPE_MISMATCH=0.5"});
  r.cancelled = true;
  EXPECT_TRUE(OcrFilter::verdict(r, settings()).failed);
}

TEST(OcrAnalyse, FindsImagesByContentUsesTheCacheAndCountsGuards) {
  filters::ocr::ResultCache cache(100, std::chrono::hours(1));
  std::string png = blank_png(300, 80);
  std::string msg = mail_with({{"application/octet-stream", png}, {"image/png", blank_png(2, 2)},
                               {"image/gif", "not a picture at all"}});
  std::atomic<bool> cancel{false};
  auto r = OcrFilter::analyse(msg, settings(), words(), &cache, &cancel);
  EXPECT_EQ(r.images, 2u);   // the octet-stream PNG and the 2x2 PNG; the fake GIF is no image
  EXPECT_EQ(r.read, 1u);
  EXPECT_EQ(r.cached, 0u);
  EXPECT_EQ(r.skipped, 1u);  // 2x2: too small
  EXPECT_TRUE(r.mismatch);   // "image/gif" that is not an image
  EXPECT_TRUE(r.hits.empty());
  auto again = OcrFilter::analyse(msg, settings(), words(), &cache, &cancel);
  EXPECT_EQ(again.read, 1u);
  EXPECT_EQ(again.cached, 1u);
}

TEST(OcrAnalyse, MaxImagesAndACancelledJobStopEarly) {
  filters::ocr::Settings s = settings();
  s.max_images = 2;
  std::vector<std::pair<std::string, std::string>> parts;
  for (int i = 0; i < 4; ++i) parts.push_back({"image/png", blank_png(100 + i, 40)});
  std::string msg = mail_with(parts);
  std::atomic<bool> cancel{false};
  auto r = OcrFilter::analyse(msg, s, words(), nullptr, &cancel);
  EXPECT_EQ(r.read, 2u);
  EXPECT_EQ(r.skipped, 2u);
  cancel = true;
  EXPECT_TRUE(OcrFilter::analyse(msg, s, words(), nullptr, &cancel).cancelled);
}

}  // namespace
