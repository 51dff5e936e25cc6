// The filter-chain part of the configuration: per-filter timeout and failure mode, the shared CPU
// worker pool, spam-score headers, and the settings of each filter (rbl, rules, clamav, ocr).
// Plain structs; keys, defaults and docs are rows in filter_parameters.cc.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "net/cidr.h"

namespace config {

using Seconds = std::chrono::duration<double>;

// What a filter's error or timeout means for the command being judged.
enum class OnError { TempFail, Continue };

struct FilterSettings {
  Seconds timeout{10};                 // a check still running after this is abandoned
  OnError on_error = OnError::TempFail;
};

// The bounded pool that runs CPU-heavy checks (ClamAV scans, body regexes) off the I/O threads.
struct Workers {
  unsigned threads = 0;                // 0 = one per CPU core
  size_t queue = 256;                  // waiting jobs; a job past it gets 451 4.3.0 (load shedding)
};

// Score headers added to relayed mail whose score reached the profile's tag_score.
struct SpamHeaders {
  std::string score = "X-Spam-Score";
  std::string status = "X-Spam-Status";
  std::string report = "X-Spam-Report";
};

// One DNS list. `kind` "ip": the client address (reversed IPv4 octets / IPv6 nibbles) is looked
// up; "domain": the envelope sender's domain (RHSBL). "allow" zones (DNSWL) list clients that
// skip every blocklist.
struct RblZone {
  std::string zone;                    // "zen.example.org"
  std::string kind = "ip";             // "ip" | "domain" | "allow"
  double weight = 1.0;                 // added to the score when listed and action = "score"
  std::string action = "score";        // "score" | "reject" (554 5.7.1 at once)
  // Answers (127.0.0.x) honoured; empty = any answer in 127.0.0.0/8. Each entry is one address
  // or an inclusive range "127.0.0.2-127.0.0.11", stored as host-order pairs. 127.255.255.0/24
  // (the lists' error answers) is never honoured when `codes` is empty.
  std::vector<std::pair<uint32_t, uint32_t>> codes;
  std::vector<std::string> servers;    // "host:port" DNS servers for this list; empty = rbl.servers
};

struct Rbl {
  std::vector<std::string> servers;    // "host:port" DNS servers; empty = /etc/resolv.conf
  Seconds query_timeout{2};            // per query try; a zone not answering is skipped (fail open)
  unsigned tries = 2;
  std::vector<RblZone> zones;
  std::vector<net::Cidr> allow;        // static allowlist: these clients skip every blocklist
  size_t cache_size = 10000;           // cached answers (by query name), TTL-bound
  Seconds max_ttl{3600};               // cache entries live min(answer TTL, max_ttl)
};

// One static pattern. `kind` says what it is matched against:
//   "helo" (the HELO/EHLO name), "sender" (the envelope sender address),
//   "header" (the value of each header named by `header`, case-insensitive, unfolded),
//   "body" (the message text after the header block, up to rules.body_limit octets).
struct Rule {
  std::string name;                    // tag in logs and X-Spam-Report
  std::string kind;                    // "helo" | "sender" | "header" | "body"
  std::string header;                  // kind "header": the header name ("Subject")
  std::string pattern;                 // RE2 syntax (linear time); "(?i)" for case-insensitive
  double score = 0;                    // added when it matches and action = "score"
  std::string action = "score";        // "score" | "reject" (554 5.7.1 naming the rule)
};

struct Rules {
  std::vector<net::Cidr> client_block; // 554 5.7.1 at connect
  std::vector<net::Cidr> client_allow; // skip rbl and rules (still scanned for viruses)
  std::vector<Rule> rules;
  size_t body_limit = 1048576;         // body octets searched by "body" rules
};

struct Clamav {
  std::string database_dir;            // *.cvd/*.cld/*.hdb/*.ndb/...; required when clamav is in a chain
  Seconds reload_check{60};            // how often the directory is checked for changed signatures
  size_t max_scan_size = 104857600;    // CL_ENGINE_MAX_SCANSIZE
  size_t max_file_size = 26214400;     // CL_ENGINE_MAX_FILESIZE
  size_t max_files = 10000;            // CL_ENGINE_MAX_FILES
  size_t max_recursion = 16;           // CL_ENGINE_MAX_RECURSION
  Seconds max_scan_time{30};           // CL_ENGINE_MAX_SCANTIME
  // What a message that exceeds a scan limit gets: "accept" (relayed, logged), "tempfail"
  // (451 4.3.0) or "reject" (554 5.7.1).
  std::string on_limit = "accept";
};

// OCR of image spam (filters/ocr): image parts found by content, decoded under guards, read by
// Tesseract on the worker pool within a time budget, matched against a word list.
struct Ocr {
  std::string words_file;              // one entry per line, "phrase [= weight]"; required when ocr is in a chain
  std::string language = "eng";        // Tesseract language(s), "eng+deu"
  std::string datapath;                // tessdata directory; empty = Tesseract's default
  std::string page_seg_mode = "auto";  // "auto" | "single_block" | "sparse_text"
  double match_threshold = 0.25;       // normalised edit distance accepted as a hit
  double score_base = 3.0;             // score of the first hit
  double score_per_hit = 1.0;          // each further unit of weight
  double score_max = 10.0;             // cap of the OCR score
  double reject_score = 0;             // OCR score at or above this: 554 5.7.1 at once (0 = never)
  double mismatch_score = 0.5;         // declared image type differs from the content
  size_t max_images = 8;               // images read per message; more are skipped and counted
  size_t max_pixels = 16000000;        // per image (or GIF screen)
  size_t min_width = 24;               // smaller images (tracking pixels) are skipped
  size_t min_height = 12;
  size_t max_decoded_bytes = 67108864; // pixel octets decoded per message
  size_t max_frames = 64;              // GIF frames decoded
  size_t upscale_below = 150;          // 2x scale-up when the shorter side is below this (0 = never)
  size_t pdf_max_pages = 3;            // PDF attachments: pages read (text layer; text-less pages OCR'd); 0 = PDFs ignored
  size_t pdf_dpi = 100;                // resolution of the pictures of text-less PDF pages
  Seconds image_timeout{3};            // OCR time of one image
  Seconds budget{10};                  // OCR time of one message; past it the filter answers with what it read
  size_t cache_size = 10000;           // OCR results kept, by image hash
  Seconds cache_ttl{86400};
  bool cache_perceptual = false;       // also key the cache by a perceptual hash (size + dHash: re-encoded copies hit)
};

// Everything the filters read, grouped so config.h stays readable.
struct FilterConfig {
  std::map<std::string, FilterSettings> settings;  // by filter name; defaults filled by the loader
  Workers workers;
  SpamHeaders headers;
  Rbl rbl;
  Rules rules;
  Clamav clamav;
  Ocr ocr;

  const FilterSettings& of(const std::string& filter) const;
};

// Filter names the chain knows, with their default timeout and failure mode.
struct KnownFilter {
  const char* name;
  FilterSettings defaults;
};
const std::vector<KnownFilter>& known_filters();

}  // namespace config
