// The OCR word list and its fuzzy matching. A list comes from a file: one entry (a word or a
// phrase) per line, optionally "= weight"; '#' starts a comment. OCR text and entries are folded
// the same way (case, OCR confusions 0/o, 1/l, rn/m ...) and compared by normalised edit distance.
// Contract: pure, thread-safe, no Asio; cost bounded by text size x entries (text is cut at 64 KiB).
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace filters::ocr {

struct Entry {
  std::string phrase;   // as written in the file (trimmed)
  std::string folded;   // fold(phrase)
  double weight = 1.0;  // "cheap pills = 2.5"
};

struct WordList {
  std::vector<Entry> entries;
};

struct ParseResult {
  std::optional<WordList> list;
  std::string error;  // "source:line: what is wrong" when list is empty
};
// Parses a list; `source` names it in errors (the file path). An empty list (no entries) is an error.
ParseResult parse_words(std::string_view text, std::string_view source);
// Reads and parses a file; an unreadable file is "path: cannot read: why".
ParseResult load_words(const std::string& path);

// Lower-case ASCII; digits and signs OCR confuses with letters mapped to them (0->o, 1->l, |->l,
// !->l, 5->s, $->s, @->a, 3->e, 4->a, 7->t, 8->b), then "rn"->"m" and "vv"->"w"; any other
// character that is not a letter becomes a space; runs of spaces collapse; trimmed. Idempotent.
std::string fold(std::string_view text);

// Levenshtein distance (insert, delete, substitute = 1).
size_t edit_distance(std::string_view a, std::string_view b);

struct Hit {
  std::string phrase;   // the entry
  std::string seen;     // the folded OCR words it matched
  double weight = 1.0;
  double distance = 0;  // normalised: edit_distance / max(length), 0 = exact
};

// Every entry found in `text`, each at most once (its best hit), in list order. An entry of N
// folded words is compared with every window of N consecutive folded words of the text, both
// with spaces and with the spaces removed (OCR drops and adds spaces), and also with windows of
// N-1 and N+1 words without spaces. It matches when the normalised distance is <= threshold;
// entries shorter than 4 letters (spaces removed) must match a whole word exactly.
std::vector<Hit> match(const WordList& list, std::string_view text, double threshold);

struct Scoring {
  double base = 3.0;           // the first hit
  double per_extra_hit = 1.0;  // every further unit of weight
  double max = 10.0;           // cap
};
// W = sum of the hits' weights; 0 when W = 0, else min(max, base + per_extra_hit * (W - 1)).
double score(const std::vector<Hit>& hits, const Scoring& s);

}  // namespace filters::ocr
