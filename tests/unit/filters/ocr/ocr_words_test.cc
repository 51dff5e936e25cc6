// Unit tests for the OCR word list: parsing and its errors, folding (and its idempotence),
// Levenshtein distance, the windowed fuzzy matcher on typical OCR errors (checked against a naive
// reference on random inputs), a 1000-entry list against 64 KiB of text, and scoring.
#include "filters/ocr/words.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>

namespace filters::ocr {
namespace {

WordList list_of(std::string_view text) {
  auto r = parse_words(text, "test");
  EXPECT_TRUE(r.list) << r.error;
  return r.list ? *r.list : WordList{};
}

std::string parse_error(std::string_view text) {
  auto r = parse_words(text, "words.txt");
  EXPECT_FALSE(r.list);
  return r.error;
}

std::vector<std::string> phrases(const std::vector<Hit>& hits) {
  std::vector<std::string> out;
  for (const auto& h : hits) out.push_back(h.phrase);
  return out;
}

bool matches(std::string_view entry, std::string_view text, double threshold = 0.25) {
  return !match(list_of(entry), text, threshold).empty();
}

// ---- parsing --------------------------------------------------------------------------------

TEST(ParseWords, EntriesWeightsCommentsAndBlankLines) {
  auto l = list_of(
      "# spam words\n"
      "\n"
      "viagra\n"
      "  cheap pills = 2.5  \n"
      "Modern Pharmacy   # trailing comment\n"
      "casino=0\n"
      "   \t\n");
  ASSERT_EQ(l.entries.size(), 4u);
  EXPECT_EQ(l.entries[0].phrase, "viagra");
  EXPECT_EQ(l.entries[0].weight, 1.0);
  EXPECT_EQ(l.entries[1].phrase, "cheap pills");
  EXPECT_EQ(l.entries[1].folded, "cheap pills");
  EXPECT_EQ(l.entries[1].weight, 2.5);
  EXPECT_EQ(l.entries[2].phrase, "Modern Pharmacy");
  EXPECT_EQ(l.entries[2].folded, "modem pharmacy");  // rn -> m also in entries
  EXPECT_EQ(l.entries[3].phrase, "casino");
  EXPECT_EQ(l.entries[3].weight, 0.0);
}

TEST(ParseWords, CrLfByteOrderMarkAndNoFinalNewline) {
  auto l = list_of("\xEF\xBB\xBFviagra\r\ncheap pills = 3\r\nlast");
  ASSERT_EQ(l.entries.size(), 3u);
  EXPECT_EQ(l.entries[0].phrase, "viagra");
  EXPECT_EQ(l.entries[1].weight, 3.0);
  EXPECT_EQ(l.entries[2].phrase, "last");
}

TEST(ParseWords, BadWeightsNameTheLine) {
  EXPECT_EQ(parse_error("viagra\n\ncheap = abc\n"), "words.txt:3: weight 'abc' is not a number");
  EXPECT_EQ(parse_error("cheap = -1"), "words.txt:1: weight '-1' is negative");
  EXPECT_EQ(parse_error("# c\ncheap = 2.5x"), "words.txt:2: weight '2.5x' is not a number");
  EXPECT_EQ(parse_error("cheap = 1 2"), "words.txt:1: weight '1 2' is not a number");
  EXPECT_EQ(parse_error("cheap = nan"), "words.txt:1: weight 'nan' is not a finite number");
  EXPECT_EQ(parse_error("cheap = inf"), "words.txt:1: weight 'inf' is not a finite number");
  EXPECT_EQ(parse_error("cheap ="), "words.txt:1: missing weight after '='");
  EXPECT_EQ(parse_error("cheap = # weight in a comment"), "words.txt:1: missing weight after '='");
}

TEST(ParseWords, EntriesThatAreEmptyOrFoldToNothing) {
  EXPECT_EQ(parse_error("ok\n= 2\n"), "words.txt:2: entry is empty (only a weight)");
  EXPECT_EQ(parse_error("ok\n... = 2\n"), "words.txt:2: entry '...' folds to nothing (it has no letters)");
  EXPECT_EQ(parse_error("\xE6\x97\xA5\xE6\x9C\xAC"),
            "words.txt:1: entry '\xE6\x97\xA5\xE6\x9C\xAC' folds to nothing (it has no letters)");
}

TEST(ParseWords, AnEmptyListIsAnError) {
  EXPECT_EQ(parse_error(""), "words.txt: no entries");
  EXPECT_EQ(parse_error("# only comments\n\n   \n"), "words.txt: no entries");
}

TEST(LoadWords, ReadsAFileAndNamesItInErrors) {
  char path[] = "/tmp/mxfront-words-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream(path) << "viagra\ncheap pills = 2\n";
  }
  auto r = load_words(path);
  ASSERT_TRUE(r.list) << r.error;
  EXPECT_EQ(r.list->entries.size(), 2u);
  {
    std::ofstream(path) << "viagra = x\n";
  }
  EXPECT_EQ(load_words(path).error, std::string(path) + ":1: weight 'x' is not a number");
  std::remove(path);
}

TEST(LoadWords, UnreadableFiles) {
  EXPECT_EQ(load_words("/nonexistent/words.txt").error, "/nonexistent/words.txt: cannot read: No such file or directory");
  EXPECT_EQ(load_words("/tmp").error, "/tmp: cannot read: Is a directory");
}

// ---- folding --------------------------------------------------------------------------------

TEST(Fold, CaseLookAlikesPairsAndSpaces) {
  EXPECT_EQ(fold("V1AGRA"), "vlagra");
  EXPECT_EQ(fold("0nline pharrnacy"), "online pharmacy");  // "rrn" -> "rm"
  EXPECT_EQ(fold("modern"), "modem");
  EXPECT_EQ(fold("vvv"), "wv");
  EXPECT_EQ(fold("rrn"), "rm");
  EXPECT_EQ(fold("0O1l|"), "oolll");
  EXPECT_EQ(fold("$5@4 3!7 8"), "ssaa elt b");
  EXPECT_EQ(fold("  Hello,   WORLD!?  "), "hello worldl");  // '!' is a look-alike of l
  EXPECT_EQ(fold("e-mail: buy.now"), "e mail buy now");
  EXPECT_EQ(fold("r.n v v"), "r n v v");  // separated letters never pair
  EXPECT_EQ(fold("caf\xC3\xA9 2 go"), "caf go");  // UTF-8 bytes and other digits are non-letters
  EXPECT_EQ(fold(""), "");
  EXPECT_EQ(fold(" ... "), "");
}

TEST(Fold, IsIdempotent) {
  std::vector<std::string> inputs = {"rrn", "vvv", "0O1l|", "rnrn", "rrnn", "vvvv", "r1n", "v v", "VV",
                                     "RN", "pharrnacy", "C H E A P", "0nline", "a--b  c", "\xFF\xFE rn",
                                     "", " ", "||||", "mrn", "wvv"};
  std::mt19937 rng(42);
  const std::string alphabet = "rnvmwRNVW01|!5$@4378aoe .-\t\xC3";
  for (int i = 0; i < 5000; ++i) {
    std::string s(rng() % 12, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    inputs.push_back(s);
  }
  for (const auto& s : inputs) {
    const auto once = fold(s);
    EXPECT_EQ(fold(once), once) << "input '" << s << "'";
    for (char c : once) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == ' ') << "input '" << s << "'";
    EXPECT_EQ(once.find("  "), std::string::npos);
    if (!once.empty()) {
      EXPECT_NE(once.front(), ' ');
      EXPECT_NE(once.back(), ' ');
    }
  }
}

// ---- distance -------------------------------------------------------------------------------

size_t naive_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j)
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
  return d[a.size()][b.size()];
}

TEST(EditDistance, KnownValues) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("sitting", "kitten"), 3u);
  EXPECT_EQ(edit_distance("viagra", "vlagra"), 1u);
  EXPECT_EQ(edit_distance("viagra", "niagara"), 2u);
  EXPECT_EQ(edit_distance("flaw", "lawn"), 2u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
}

TEST(EditDistance, AgreesWithTheFullMatrixOnRandomStrings) {
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string a(rng() % 15, 'a'), b(rng() % 15, 'a');
    for (char& c : a) c = static_cast<char>('a' + rng() % 3);
    for (char& c : b) c = static_cast<char>('a' + rng() % 3);
    ASSERT_EQ(edit_distance(a, b), naive_distance(a, b)) << a << " / " << b;
  }
}

// ---- matching -------------------------------------------------------------------------------

TEST(Match, TypicalOcrErrors) {
  EXPECT_TRUE(matches("viagra", "Buy V1AGRA now"));
  EXPECT_TRUE(matches("viagra", "buy vlagra now"));
  EXPECT_TRUE(matches("cheap viagra", "CHEAPVIAGRA!!"));  // a dropped space
  EXPECT_TRUE(matches("cheap", "very che ap stuff"));     // an added space
  EXPECT_TRUE(matches("modern", "a modem design"));       // rn/m: both fold to "modem"
  EXPECT_TRUE(matches("online pharmacy", "Visit our 0nline pharrnacy today"));
  EXPECT_TRUE(matches("online pharmacy", "onlinepharmacy"));
  EXPECT_TRUE(matches("online pharmacy", "on line pharmacy"));  // N + 1 words
}

TEST(Match, NearMissesDoNotMatch) {
  EXPECT_EQ(edit_distance("viagra", "niagara"), 2u);  // 2 / 7 = 0.29 > 0.25
  EXPECT_FALSE(matches("viagra", "a trip to niagara falls"));
  EXPECT_FALSE(matches("cheap viagra", "a trip to niagara falls"));
  EXPECT_FALSE(matches("pharmacy", "farm"));
  EXPECT_FALSE(matches("viagra", ""));
}

TEST(Match, ShortEntriesMatchWholeWordsExactly) {
  EXPECT_TRUE(matches("sex", "HOT SEX here"));
  EXPECT_TRUE(matches("sex", "s3x"));  // folding still applies
  EXPECT_FALSE(matches("sex", "sexy"));
  EXPECT_FALSE(matches("sex", "sussex"));
  EXPECT_FALSE(matches("sex", "se x"));
  EXPECT_FALSE(matches("sex", "sax", 1.0));
  EXPECT_TRUE(matches("x x", "a x x b"));
  EXPECT_FALSE(matches("x x", "xx"));
}

TEST(Match, ThresholdZeroIsExactOnly) {
  EXPECT_FALSE(matches("viagra", "vlagra", 0));
  EXPECT_TRUE(matches("viagra", "V I A G R A viagra", 0));
  EXPECT_TRUE(matches("viagra", "V1AGRA", 0.17));   // 1 / 6 = 0.167
  EXPECT_FALSE(matches("viagra", "V1AGRA", 0.16));
  EXPECT_TRUE(matches("cheap viagra", "cheapviagra", 0));  // spaces removed: exact
  EXPECT_FALSE(matches("viagra", "vlagra", -1));            // negative: exact only
}

TEST(Match, EachEntryOnceWithItsBestHitInListOrder) {
  auto list = list_of("pharmacy = 2\nviagra\ncasino\ncheap viagra = 3\n");
  auto hits = match(list, "vlagra cheap viagra pharrnacy VIAGRA", 0.25);
  ASSERT_EQ(phrases(hits), (std::vector<std::string>{"pharmacy", "viagra", "cheap viagra"}));
  EXPECT_EQ(hits[0].seen, "pharmacy");
  EXPECT_EQ(hits[0].weight, 2.0);
  EXPECT_EQ(hits[0].distance, 0.0);
  EXPECT_EQ(hits[1].seen, "viagra");  // the exact one, not the earlier "vlagra"
  EXPECT_EQ(hits[1].distance, 0.0);
  EXPECT_EQ(hits[2].seen, "cheap viagra");
  EXPECT_EQ(hits[2].weight, 3.0);
}

TEST(Match, ReportsTheOcrWordsAndTheNormalisedDistance) {
  auto hits = match(list_of("viagra"), "BUY V1AGRA", 0.25);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].seen, "vlagra");
  EXPECT_DOUBLE_EQ(hits[0].distance, 1.0 / 6);
  hits = match(list_of("cheap"), "che ap", 0.25);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].seen, "che ap");
  EXPECT_EQ(hits[0].distance, 0.0);
}

TEST(Match, ReadsOnlyTheFirst64KiB) {
  const std::string pad(64 * 1024 - 6, ' ');
  EXPECT_TRUE(matches("viagra", pad + "viagra", 0));     // ends exactly at 64 KiB
  EXPECT_FALSE(matches("viagra", pad + " viagra", 0));   // "viagr" after the cut
  EXPECT_FALSE(matches("viagra", pad + "   viagra"));    // "via": too far even when fuzzy
}

// A reference matcher written straight from the contract: every window, full distance matrix.
// Its candidates (normalised distance, OCR words) per entry, in window order, for any threshold.
using Candidates = std::vector<std::vector<std::pair<double, std::string>>>;

Candidates naive_candidates(const WordList& list, std::string_view text) {
  std::vector<std::string> words;
  const std::string folded = fold(text.substr(0, 64 * 1024));
  for (size_t p = 0; p < folded.size();) {
    size_t e = std::min(folded.find(' ', p), folded.size());
    words.push_back(folded.substr(p, e - p));
    p = e + 1;
  }
  auto join = [&](size_t i, size_t n, std::string_view sep) {
    std::string s;
    for (size_t k = i; k < i + n; ++k) s += (k > i ? std::string(sep) : "") + words[k];
    return s;
  };
  Candidates all;
  for (const auto& e : list.entries) {
    auto& out = all.emplace_back();
    std::string bare = e.folded;
    std::erase(bare, ' ');
    const size_t n = static_cast<size_t>(std::count(e.folded.begin(), e.folded.end(), ' ')) + 1;
    auto add = [&](const std::string& a, const std::string& b, size_t i, size_t w) {
      out.emplace_back(double(naive_distance(a, b)) / double(std::max(a.size(), b.size())), join(i, w, " "));
    };
    for (size_t w : {n, n - 1, n + 1}) {
      if (w == 0) continue;
      for (size_t i = 0; i + w <= words.size(); ++i) {
        if (bare.size() < 4) {
          if (w == n && join(i, w, " ") == e.folded) out.emplace_back(0.0, e.folded);
          continue;
        }
        if (w == n) add(e.folded, join(i, w, " "), i, w);
        add(bare, join(i, w, ""), i, w);
      }
    }
  }
  return all;
}

std::vector<Hit> naive_match(const WordList& list, const Candidates& all, double t) {
  std::vector<Hit> hits;
  for (size_t k = 0; k < all.size(); ++k) {
    const std::pair<double, std::string>* best = nullptr;
    for (const auto& c : all[k])
      if (c.first <= t && (!best || c.first < best->first)) best = &c;
    if (best) hits.push_back(Hit{list.entries[k].phrase, best->second, list.entries[k].weight, best->first});
  }
  return hits;
}

TEST(Match, AgreesWithANaiveReferenceOnRandomInputs) {
  std::mt19937 rng(1234);
  size_t fuzzy_hits = 0;
  auto word = [&](size_t max_len) {
    std::string w(1 + rng() % max_len, 'a');
    for (char& c : w) c = "abcde"[rng() % 5];
    return w;
  };
  for (int round = 0; round < 150; ++round) {
    std::string list_text, text;
    for (int e = 0; e < 4; ++e) {
      size_t n = 1 + rng() % 3;
      for (size_t k = 0; k < n; ++k) list_text += (k ? " " : "") + word(6);
      list_text += "\n";
    }
    for (int w = 0; w < 30; ++w) text += word(7) + " ";
    const auto list = list_of(list_text);
    const auto candidates = naive_candidates(list, text);
    for (double t : {0.0, 0.1, 0.2, 0.25, 0.3, 0.34, 0.4, 0.5, 0.6, 0.7}) {
      auto got = match(list, text, t);
      auto want = naive_match(list, candidates, t);
      ASSERT_EQ(got.size(), want.size()) << list_text << "|" << text << " t=" << t;
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].phrase, want[i].phrase);
        EXPECT_EQ(got[i].seen, want[i].seen);
        EXPECT_DOUBLE_EQ(got[i].distance, want[i].distance) << got[i].phrase << " in " << text << " t=" << t;
        if (got[i].distance > 0) ++fuzzy_hits;
      }
    }
  }
  EXPECT_GT(fuzzy_hits, 500u);  // the comparison is not vacuous
}

TEST(Match, AThousandEntriesAgainst64KiBOfText) {
  std::mt19937 rng(99);
  auto word = [&] {
    std::string w(3 + rng() % 8, 'a');
    for (char& c : w) c = static_cast<char>('a' + rng() % 26);
    return w;
  };
  std::string list_text;
  for (int i = 0; i < 1000; ++i) list_text += word() + (i % 3 == 0 ? " " + word() : "") + "\n";
  list_text += "online pharmacy = 2\n";
  std::string text;
  while (text.size() < 64 * 1024) text += word() + (rng() % 10 == 0 ? "\n" : " ");
  text.insert(text.size() / 2, " 0nline pharrnacy ");
  const auto list = list_of(list_text);
  ASSERT_EQ(list.entries.size(), 1001u);
  auto hits = match(list, text, 0.25);
  EXPECT_FALSE(hits.empty());
  EXPECT_EQ(hits.back().phrase, "online pharmacy");
  EXPECT_EQ(hits.back().distance, 0.0);
}

// ---- scoring --------------------------------------------------------------------------------

Hit hit(double weight) { return Hit{"p", "p", weight, 0}; }

TEST(Score, AsDocumented) {
  const Scoring s;  // base 3, +1 per extra unit of weight, max 10
  EXPECT_EQ(score({}, s), 0.0);
  EXPECT_EQ(score({hit(1)}, s), 3.0);
  EXPECT_EQ(score({hit(1), hit(1)}, s), 4.0);
  EXPECT_EQ(score({hit(2.5)}, s), 4.5);
  EXPECT_EQ(score({hit(0)}, s), 0.0);  // weight 0: reported, not scored
  EXPECT_EQ(score({hit(0.5)}, s), 2.5);
  EXPECT_EQ(score({hit(5), hit(5), hit(5)}, s), 10.0);  // capped
  EXPECT_EQ(score({hit(2)}, Scoring{5.0, 2.0, 6.0}), 6.0);
  EXPECT_EQ(score({hit(1), hit(1)}, Scoring{5.0, 0.5, 20.0}), 5.5);
}

}  // namespace
}  // namespace filters::ocr
