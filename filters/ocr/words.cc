// The OCR word list (words.h): parsing with "source:line: what" errors, the OCR folding, Levenshtein
// distance and the windowed fuzzy matcher. Pure functions, no exceptions, no shared state, so
// every call is thread-safe; match() costs at most the bound stated above it.
#include "filters/ocr/words.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>

namespace filters::ocr {
namespace {

constexpr size_t kMaxText = 64 * 1024;  // match() reads at most this much OCR text
constexpr size_t kShortEntry = 4;       // entries with fewer letters match exact words only

// ---- text helpers ---------------------------------------------------------------------------

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_lower(char c) { return c >= 'a' && c <= 'z'; }

std::string without_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (c != ' ') out += c;
  return out;
}

// ---- folding --------------------------------------------------------------------------------

// One byte: ASCII upper case lowered, OCR look-alikes mapped to their letter. Everything else,
// including every byte of a UTF-8 sequence, is left for the non-letter step: OCR text of image
// spam is ASCII-ish, and this keeps folding byte-wise and locale-free.
char map_char(char c) {
  if (c >= 'A' && c <= 'Z') return static_cast<char>(c - 'A' + 'a');
  switch (c) {
    case '0': return 'o';
    case '1': case '|': case '!': return 'l';
    case '5': case '$': return 's';
    case '@': case '4': return 'a';
    case '3': return 'e';
    case '7': return 't';
    case '8': return 'b';
    default: return c;
  }
}

// "rn" -> "m", "vv" -> "w", left to right. One pass is already stable: the replacements produce
// 'm' and 'w', which start and end no pattern, so no new pair can appear ("rrn" -> "rm",
// "vvv" -> "wv").
std::string replace_pairs(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (i + 1 < s.size() && s[i] == 'r' && s[i + 1] == 'n') {
      out += 'm';
      ++i;
    } else if (i + 1 < s.size() && s[i] == 'v' && s[i + 1] == 'v') {
      out += 'w';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Non-letters become one separating space; no leading or trailing space.
std::string letters_and_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (char c : s) {
    if (!is_lower(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

// ---- parsing --------------------------------------------------------------------------------

// "2.5" -> 2.5; an error message otherwise (no exceptions: std::from_chars).
std::optional<double> parse_weight(std::string_view s, std::string& error) {
  if (s.empty()) {
    error = "missing weight after '='";
    return std::nullopt;
  }
  double w = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), w);
  if (ec != std::errc() || end != s.data() + s.size()) {
    error = fmt::format("weight '{}' is not a number", s);
    return std::nullopt;
  }
  if (!std::isfinite(w)) {
    error = fmt::format("weight '{}' is not a finite number", s);
    return std::nullopt;
  }
  if (w < 0) {
    error = fmt::format("weight '{}' is negative", s);
    return std::nullopt;
  }
  return w;
}

// One non-blank, comment-free line -> an entry, or an error message (without the location).
std::optional<Entry> parse_entry(std::string_view line, std::string& error) {
  Entry e;
  std::string_view phrase = line;
  if (auto eq = line.rfind('='); eq != std::string_view::npos) {
    auto w = parse_weight(trim(line.substr(eq + 1)), error);
    if (!w) return std::nullopt;
    e.weight = *w;
    phrase = trim(line.substr(0, eq));
  }
  if (phrase.empty()) {
    error = "entry is empty (only a weight)";
    return std::nullopt;
  }
  e.phrase = std::string(phrase);
  e.folded = fold(phrase);
  if (e.folded.empty()) {
    error = fmt::format("entry '{}' folds to nothing (it has no letters)", phrase);
    return std::nullopt;
  }
  return e;
}

ParseResult failure(std::string error) {
  ParseResult r;
  r.error = std::move(error);
  return r;
}

// ---- distance -------------------------------------------------------------------------------

// Reusable rows for the banded Levenshtein, so the matcher allocates once per call.
struct Rows {
  std::vector<size_t> prev, cur;
};

// Levenshtein distance of a and b if it is <= k, else k + 1. Only the diagonal band |i - j| <= k
// is computed (Ukkonen), and the loop stops once a whole row exceeds k: O(min(la, lb) x (2k + 1)).
size_t bounded_distance(std::string_view a, std::string_view b, size_t k, Rows& rows) {
  if (a.size() < b.size()) std::swap(a, b);  // columns over the shorter string
  const size_t la = a.size(), lb = b.size(), inf = k + 1;
  if (la - lb > k) return inf;
  if (lb == 0) return std::min(la, inf);
  rows.prev.assign(lb + 1, inf);
  rows.cur.assign(lb + 1, inf);
  for (size_t j = 0; j <= std::min(lb, k); ++j) rows.prev[j] = j;
  for (size_t i = 1; i <= la; ++i) {
    const size_t lo = i > k ? i - k : 1, hi = std::min(lb, i + k);
    if (lo > hi) return inf;  // the band left the matrix: more than k deletions
    rows.cur[lo - 1] = lo == 1 ? std::min(i, inf) : inf;
    size_t row_min = rows.cur[lo - 1];
    for (size_t j = lo; j <= hi; ++j) {
      size_t v = rows.prev[j - 1] + (a[i - 1] != b[j - 1] ? 1 : 0);
      v = std::min({v, rows.prev[j] + 1, rows.cur[j - 1] + 1, inf});
      rows.cur[j] = v;
      row_min = std::min(row_min, v);
    }
    if (hi < lb) rows.cur[hi + 1] = inf;  // the next row reads it as "above"
    if (row_min >= inf) return inf;
    std::swap(rows.prev, rows.cur);
  }
  return std::min(rows.prev[lb], inf);
}

// ---- matching -------------------------------------------------------------------------------

// The letters a string holds, one bit each: a cheap lower bound on the edit distance follows,
// since every letter of one string missing from the other costs at least one edit.
uint32_t letter_set(std::string_view s) {
  uint32_t set = 0;
  for (char c : s)
    if (is_lower(c)) set |= 1u << (c - 'a');
  return set;
}

// Bit count without a libgcc call (no -mpopcnt here): the classic SWAR sum.
int bits(uint32_t v) {
  v = v - ((v >> 1) & 0x55555555u);
  v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  return static_cast<int>((((v + (v >> 4)) & 0x0F0F0F0Fu) * 0x01010101u) >> 24);
}

size_t missing_letters(uint32_t a, uint32_t b) { return static_cast<size_t>(std::max(bits(a & ~b), bits(b & ~a))); }

// The most edits `threshold` allows between strings whose longer one has m characters (with a
// little slack for rounding: the normalised distance itself decides).
size_t allowed_edits(double threshold, size_t m) {
  const double most = std::floor(threshold * static_cast<double>(m) + 1e-9);
  return most >= static_cast<double>(m) ? m : static_cast<size_t>(most);
}

// The window lengths that can match an entry of `la` characters: |la - lb| <= allowed_edits(max).
// Contiguous, since the allowance grows by at most one per character when threshold < 1.
struct Lengths {
  size_t lo = 0, hi = 0;
  Lengths(size_t la, double threshold) : lo(la - allowed_edits(threshold, la)), hi(la) {
    if (threshold >= 1) {
      hi = SIZE_MAX;
      return;
    }
    while (hi < kMaxText && hi + 1 - la <= allowed_edits(threshold, hi + 1)) ++hi;  // no window is longer
  }
  bool contains(size_t lb) const { return lb >= lo && lb <= hi; }
};

// The folded OCR text, split into words, plus the same words without spaces, so that any window
// of consecutive words is a substring of one or the other (no allocation per window).
struct Text {
  std::string folded;                            // "cheap via gra"
  std::string joined;                            // "cheapviagra"
  std::vector<std::pair<size_t, size_t>> words;  // [begin, end) in folded
  std::vector<size_t> joined_at;                 // word i starts at joined_at[i]; size words + 1
  std::vector<uint32_t> letters;                 // letter_set of each word

  explicit Text(std::string_view text) : folded(fold(text.substr(0, std::min(text.size(), kMaxText)))) {
    size_t pos = 0;
    while (pos < folded.size()) {
      size_t end = folded.find(' ', pos);
      if (end == std::string::npos) end = folded.size();
      words.emplace_back(pos, end);
      joined_at.push_back(joined.size());
      joined.append(folded, pos, end - pos);
      letters.push_back(letter_set(std::string_view(folded).substr(pos, end - pos)));
      pos = end + 1;
    }
    joined_at.push_back(joined.size());
  }
  size_t count() const { return words.size(); }
  // Words [i, i + n), with their spaces and without, and their letters.
  std::string_view spaced(size_t i, size_t n) const {
    return std::string_view(folded).substr(words[i].first, words[i + n - 1].second - words[i].first);
  }
  std::string_view bare(size_t i, size_t n) const {
    return std::string_view(joined).substr(joined_at[i], joined_at[i + n] - joined_at[i]);
  }
  uint32_t letters_of(size_t i, size_t n) const {
    uint32_t set = 0;
    for (size_t k = i; k < i + n; ++k) set |= letters[k];
    return set;
  }
};

size_t word_count(std::string_view folded) {
  return folded.empty() ? 0 : static_cast<size_t>(std::count(folded.begin(), folded.end(), ' ')) + 1;
}

// The best window found so far for one entry.
struct Best {
  bool found = false;
  double distance = 0;
  size_t at = 0, words = 0;
};

// One entry, spaced and bare, against the windows of one text.
struct EntryMatcher {
  std::string_view spaced, bare;
  Lengths spaced_lengths, bare_lengths;
  uint32_t letters;  // the entry's letter_set
  double threshold;
  Rows& rows;
  Best best;

  EntryMatcher(std::string_view spaced_, std::string_view bare_, double threshold_, Rows& rows_)
      : spaced(spaced_), bare(bare_), spaced_lengths(spaced.size(), threshold_),
        bare_lengths(bare.size(), threshold_), letters(letter_set(bare)), threshold(threshold_), rows(rows_) {}

  // Compares the entry with a window and keeps it when within the threshold and better. Two O(1)
  // prefilters come before the banded distance: the window's length and its missing letters.
  void consider(bool with_spaces, std::string_view window, uint32_t window_letters, size_t at, size_t words) {
    if (!(with_spaces ? spaced_lengths : bare_lengths).contains(window.size())) return;
    const std::string_view entry = with_spaces ? spaced : bare;
    const size_t m = std::max(entry.size(), window.size()), k = allowed_edits(threshold, m);
    if (m == 0 || missing_letters(letters, window_letters) > k) return;
    const size_t d = bounded_distance(entry, window, k, rows);
    if (d > k) return;
    const double norm = static_cast<double>(d) / static_cast<double>(m);
    if (norm > threshold || (best.found && norm >= best.distance)) return;
    best = Best{true, norm, at, words};
  }
};

// Short entries: an exact window of whole words, spaces included.
Best match_short(const Entry& e, size_t n, const Text& text) {
  for (size_t i = 0; i + n <= text.count(); ++i)
    if (text.spaced(i, n) == e.folded) return Best{true, 0.0, i, n};
  return {};
}

// Windows of n words (spaced and bare), then n - 1 and n + 1 words bare; stops at an exact hit.
Best match_fuzzy(const Entry& e, std::string_view bare_entry, size_t n, const Text& text, double threshold,
                 Rows& rows) {
  EntryMatcher m(e.folded, bare_entry, threshold, rows);
  const size_t sizes[] = {n, n - 1, n + 1};
  for (size_t w : sizes) {
    if (w == 0 || w > text.count()) continue;
    for (size_t i = 0; i + w <= text.count(); ++i) {
      const uint32_t letters = text.letters_of(i, w);
      if (w == n && w > 1) m.consider(true, text.spaced(i, w), letters, i, w);
      m.consider(false, text.bare(i, w), letters, i, w);
      if (m.best.found && m.best.distance == 0) return m.best;
    }
  }
  return m.best;
}

}  // namespace

ParseResult parse_words(std::string_view text, std::string_view source) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte-order mark
  WordList list;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    std::string error;
    auto entry = parse_entry(line, error);
    if (!entry) return failure(fmt::format("{}:{}: {}", source, line_no, error));
    list.entries.push_back(std::move(*entry));
  }
  if (list.entries.empty()) return failure(fmt::format("{}: no entries", source));
  ParseResult r;
  r.list = std::move(list);
  return r;
}

ParseResult load_words(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return failure(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  std::string text;
  char buf[8192];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  if (std::ferror(f.get())) return failure(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  return parse_words(text, path);
}

// Order matters for idempotence: look-alikes first (so "0" and "1" can form pairs), then the
// pairs, then non-letters to spaces (which never joins letters, so no new pair can appear).
std::string fold(std::string_view text) {
  std::string mapped(text);
  for (char& c : mapped) c = map_char(c);
  return letters_and_spaces(replace_pairs(mapped));
}

size_t edit_distance(std::string_view a, std::string_view b) {
  Rows rows;
  return bounded_distance(a, b, std::max(a.size(), b.size()), rows);
}

// Cost bound: with T <= 32 Ki words (64 KiB of text), E entries of at most L letters and
// threshold t < 1, at most 4 windows per word and entry go through the cheap prefilters (length,
// letters), and each survivor costs O(L x (2k + 1)) with k <= t x L / (1 - t) (banded, early exit):
// O(E x T x L x (tL + 1)) in all; about 0.15 s for 1000 entries and 64 KiB here. Each entry stops
// at its first exact hit. A negative or NaN threshold is treated as 0 (exact only).
std::vector<Hit> match(const WordList& list, std::string_view text, double threshold) {
  if (!(threshold >= 0)) threshold = 0;
  const Text words(text);
  Rows rows;
  std::vector<Hit> hits;
  for (const Entry& e : list.entries) {
    const std::string bare = without_spaces(e.folded);
    const size_t n = word_count(e.folded);
    if (bare.empty()) continue;
    const Best best = bare.size() < kShortEntry ? match_short(e, n, words)
                                                : match_fuzzy(e, bare, n, words, threshold, rows);
    if (best.found)
      hits.push_back(Hit{e.phrase, std::string(words.spaced(best.at, best.words)), e.weight, best.distance});
  }
  return hits;
}

double score(const std::vector<Hit>& hits, const Scoring& s) {
  double w = 0;
  for (const Hit& h : hits) w += h.weight;
  if (w <= 0) return 0;
  return std::min(s.max, s.base + s.per_extra_hit * (w - 1));
}

}  // namespace filters::ocr
