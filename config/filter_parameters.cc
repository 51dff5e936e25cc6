// Rows of the parameter table for the filter chain: [workers], [spam], each filter's timeout and
// on_error, and the sections of rbl ([rbl], [[rbl.zone]]), rules ([rules], [[rules.rule]]) and
// clamav ([clamav]) and ocr ([ocr]). One row per key; parameters() appends them to the core rows.
#include <arpa/inet.h>

#include <re2/re2.h>

#include "config/parameters.h"
#include "config/setters.h"

namespace config {

const std::vector<KnownFilter>& known_filters() {
  using namespace std::chrono_literals;
  static const std::vector<KnownFilter> k = {
      {"relay_control", {Seconds(30), OnError::TempFail}},
      {"rules", {Seconds(10), OnError::TempFail}},
      {"rbl", {Seconds(10), OnError::Continue}},  // a dead RBL must not stop mail
      {"clamav", {Seconds(120), OnError::TempFail}},
      {"ocr", {Seconds(30), OnError::Continue}},  // a heavy, optional opinion: failing it must not stop mail
  };
  return k;
}

const FilterSettings& FilterConfig::of(const std::string& filter) const {
  static const FilterSettings fallback;
  auto it = settings.find(filter);
  return it == settings.end() ? fallback : it->second;
}

namespace {
using namespace setters;

RblZone& zone(Config& c) { return c.filters.rbl.zones.back(); }
Rule& rule(Config& c) { return c.filters.rules.rules.back(); }

Setter one_of(std::function<std::string&(Config&)> get, std::vector<std::string> allowed) {
  return [get, allowed](Config& c, Listener&, const toml::node& n) -> std::string {
    auto s = n.value_exact<std::string>();
    if (s)
      for (const auto& a : allowed)
        if (*s == a) {
          get(c) = *s;
          return {};
        }
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
    return "expected one of " + list;
  };
}


Setter cidr_list(std::function<std::vector<net::Cidr>&(Config&)> get) {
  return [get](Config& c, Listener&, const toml::node& n) -> std::string {
    std::string err;
    auto list = string_list(n, err);
    if (!err.empty()) return err;
    std::vector<net::Cidr> out;
    for (const auto& s : list) {
      auto r = net::Cidr::parse(s);
      if (!r) return fmt::format("'{}' is not an address or CIDR range", s);
      out.push_back(*r);
    }
    get(c) = std::move(out);
    return {};
  };
}

Setter filter_timeout(const char* filter) {
  return [filter](Config& c, Listener&, const toml::node& n) -> std::string {
    std::optional<double> v;
    if (auto i = n.value_exact<int64_t>()) v = static_cast<double>(*i);
    else if (auto d = n.value_exact<double>()) v = *d;
    if (!v || *v < 0.001 || *v > 3600) return "expected a number of seconds between 0.001 and 3600";
    c.filters.settings[filter].timeout = Seconds(*v);
    return {};
  };
}

Setter filter_on_error(const char* filter) {
  return [filter](Config& c, Listener&, const toml::node& n) -> std::string {
    auto s = n.value_exact<std::string>();
    if (!s || (*s != "tempfail" && *s != "continue")) return "expected \"tempfail\" or \"continue\"";
    c.filters.settings[filter].on_error = *s == "tempfail" ? OnError::TempFail : OnError::Continue;
    return {};
  };
}

std::optional<uint32_t> ipv4(std::string_view s) {
  in_addr a{};
  if (inet_pton(AF_INET, std::string(s).c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string set_zone_codes(Config& c, Listener&, const toml::node& n) {
  std::string err;
  auto list = string_list(n, err);
  if (!err.empty()) return err;
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (const auto& s : list) {
    size_t dash = s.find('-');
    auto lo = ipv4(s.substr(0, dash));
    auto hi = dash == std::string::npos ? lo : ipv4(s.substr(dash + 1));
    if (!lo || !hi || *hi < *lo) return fmt::format("'{}' is not an address or \"a.b.c.d-a.b.c.e\" range", s);
    out.emplace_back(*lo, *hi);
  }
  zone(c).codes = std::move(out);
  return {};
}

std::string set_zone_name(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s || s->empty() || s->front() == '.' || s->back() == '.' || s->size() > 200)
    return "expected a DNS zone name such as \"zen.example.org\"";
  for (char ch : *s)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' || ch == '_'))
      return fmt::format("'{}' is not a DNS zone name", *s);
  zone(c).zone = *s;
  return {};
}

Setter dns_servers(std::function<std::vector<std::string>&(Config&)> get) {
  return [get](Config& c, Listener&, const toml::node& n) -> std::string {
    std::string err;
    auto list = string_list(n, err);
    if (!err.empty()) return err;
    for (const auto& s : list) {
      std::string host;
      uint16_t port = 0;
      if (!parse_host_port(s, host, port, true, err)) return fmt::format("'{}': {}", s, err);
    }
    get(c) = std::move(list);
    return {};
  };
}

std::string set_rule_pattern(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s || s->empty()) return "expected a regular expression (RE2 syntax)";
  RE2::Options o;
  o.set_log_errors(false);
  RE2 re(*s, o);
  if (!re.ok()) return fmt::format("bad regular expression: {}", re.error());
  rule(c).pattern = *s;
  return {};
}

std::string check_rule(const Config& c) {
  const Rule& r = c.filters.rules.rules.back();
  if (r.kind == "header" && r.header.empty()) return fmt::format("rule '{}': kind \"header\" needs header = \"Name\"", r.name);
  if (r.kind != "header" && !r.header.empty()) return fmt::format("rule '{}': header is only for kind \"header\"", r.name);
  return {};
}

std::string check_zone(const Config& c) {
  const RblZone& z = c.filters.rbl.zones.back();
  if (z.kind == "allow" && z.action == "reject") return fmt::format("zone '{}': an allow zone cannot reject", z.zone);
  return {};
}

}  // namespace

const std::vector<ArraySection>& array_sections() {
  static const std::vector<ArraySection> a = {
      {"rbl.zone", [](Config& c) { c.filters.rbl.zones.emplace_back(); }, {"zone"}, check_zone},
      {"rules.rule", [](Config& c) { c.filters.rules.rules.emplace_back(); }, {"name", "kind", "pattern"}, check_rule},
  };
  return a;
}

std::vector<Parameter> filter_parameters() {
  constexpr int64_t kBig = int64_t{1} << 40;
  std::vector<Parameter> rows = {
      {"workers", "threads", "integer", "0", "Threads for CPU-heavy checks (virus scans, body rules); 0 = one per CPU core.",
       size_param([](Config& c) -> unsigned& { return c.filters.workers.threads; }, 0, 256)},
      {"workers", "queue", "integer", "256", "Checks waiting for a worker thread; past it the command gets 451 4.3.0 (load shedding).",
       size_param([](Config& c) -> size_t& { return c.filters.workers.queue; }, 0, 1000000)},
      {"spam", "score_header", "string", "X-Spam-Score", "Header carrying the message's score when it reached the profile's tag_score.",
       string_param([](Config& c) -> std::string& { return c.filters.headers.score; })},
      {"spam", "status_header", "string", "X-Spam-Status", "Header carrying \"Yes, score=S tag=T reject=R\".",
       string_param([](Config& c) -> std::string& { return c.filters.headers.status; })},
      {"spam", "report_header", "string", "X-Spam-Report", "Header listing the tags that scored (\"RBL_ZEN=3 RULE_CASINO=2\").",
       string_param([](Config& c) -> std::string& { return c.filters.headers.report; })},

      {"rbl", "servers", "list", "[]", "DNS servers for the lists, \"ip:port\" / \"[ipv6]:port\"; empty = /etc/resolv.conf.",
       dns_servers([](Config& c) -> std::vector<std::string>& { return c.filters.rbl.servers; })},
      {"rbl", "query_timeout", "seconds", "2", "Per DNS query try; a zone that does not answer is skipped and counted (fail open).",
       seconds_param([](Config& c) -> Seconds& { return c.filters.rbl.query_timeout; }, 0.01, 60)},
      {"rbl", "tries", "integer", "2", "DNS tries per query.",
       size_param([](Config& c) -> unsigned& { return c.filters.rbl.tries; }, 1, 10)},
      {"rbl", "allow", "list", "[]", "Client addresses/CIDRs that skip every blocklist (static allowlist).",
       cidr_list([](Config& c) -> std::vector<net::Cidr>& { return c.filters.rbl.allow; })},
      {"rbl", "cache_size", "integer", "10000", "DNS answers cached (by query name) for their TTL; 0 disables the cache.",
       size_param([](Config& c) -> size_t& { return c.filters.rbl.cache_size; }, 0, 10000000)},
      {"rbl", "max_ttl", "seconds", "3600", "Longest time an answer is cached, whatever its TTL.",
       seconds_param([](Config& c) -> Seconds& { return c.filters.rbl.max_ttl; }, 0, 86400)},
      {"rbl.zone", "zone", "string", "(required)", "[[rbl.zone]]: the list's DNS zone, e.g. \"zen.example.org\". One [[rbl.zone]] table per list.", set_zone_name},
      {"rbl.zone", "kind", "string", "ip", "[[rbl.zone]]: \"ip\" (client address, IPv4 octets or IPv6 nibbles reversed), \"domain\" (RHSBL: envelope sender domain) or \"allow\" (DNSWL: a listed client skips the blocklists).",
       one_of([](Config& c) -> std::string& { return zone(c).kind; }, {"ip", "domain", "allow"})},
      {"rbl.zone", "weight", "number", "1", "[[rbl.zone]]: score added when listed (action \"score\").",
       number_param([](Config& c) -> double& { return zone(c).weight; }, -1000, 1000)},
      {"rbl.zone", "action", "string", "score", "[[rbl.zone]]: \"reject\" (554 5.7.1 naming the list and its TXT reason) or \"score\" (add weight).",
       one_of([](Config& c) -> std::string& { return zone(c).action; }, {"score", "reject"})},
      {"rbl.zone", "codes", "list", "[] (any 127.0.0.0/8)", "[[rbl.zone]]: answers honoured: addresses or ranges \"127.0.0.2-127.0.0.11\"; empty = any 127.0.0.0/8 answer except 127.255.255.0/24 (list errors).", set_zone_codes},
      {"rbl.zone", "servers", "list", "[] (rbl.servers)", "[[rbl.zone]]: DNS servers for this list only, \"ip:port\"; empty = rbl.servers.",
       dns_servers([](Config& c) -> std::vector<std::string>& { return zone(c).servers; })},

      {"rules", "client_block", "list", "[]", "Client addresses/CIDRs refused at connect (554 5.7.1).",
       cidr_list([](Config& c) -> std::vector<net::Cidr>& { return c.filters.rules.client_block; })},
      {"rules", "client_allow", "list", "[]", "Client addresses/CIDRs that skip rbl and rules (still virus-scanned).",
       cidr_list([](Config& c) -> std::vector<net::Cidr>& { return c.filters.rules.client_allow; })},
      {"rules", "body_limit", "integer", "1048576", "Body octets searched by body rules.",
       size_param([](Config& c) -> size_t& { return c.filters.rules.body_limit; }, 1024, kBig)},
      {"rules.rule", "name", "string", "(required)", "[[rules.rule]]: the rule's name, used in logs, replies and X-Spam-Report. One [[rules.rule]] table per rule.",
       string_param([](Config& c) -> std::string& { return rule(c).name; })},
      {"rules.rule", "kind", "string", "(required)", "[[rules.rule]]: what the pattern is matched against: \"helo\", \"sender\", \"header\" or \"body\".",
       one_of([](Config& c) -> std::string& { return rule(c).kind; }, {"helo", "sender", "header", "body"})},
      {"rules.rule", "header", "string", "\"\"", "[[rules.rule]]: for kind \"header\": the header name (case-insensitive).",
       string_param([](Config& c) -> std::string& { return rule(c).header; })},
      {"rules.rule", "pattern", "string", "(required)", "[[rules.rule]]: RE2 regular expression (linear time; \"(?i)\" for case-insensitive).", set_rule_pattern},
      {"rules.rule", "score", "number", "0", "[[rules.rule]]: score added when it matches (action \"score\").",
       number_param([](Config& c) -> double& { return rule(c).score; }, -1000, 1000)},
      {"rules.rule", "action", "string", "score", "[[rules.rule]]: \"reject\" (554 5.7.1 naming the rule) or \"score\".",
       one_of([](Config& c) -> std::string& { return rule(c).action; }, {"score", "reject"})},

      {"clamav", "database_dir", "string", "(required for clamav)", "Signature directory (*.cvd, *.cld, *.hdb, *.ndb ...), loaded at start; changes are compiled in the background and swapped in.",
       string_param([](Config& c) -> std::string& { return c.filters.clamav.database_dir; })},
      {"clamav", "reload_check", "seconds", "60", "How often the signature directory is checked for changes (SIGHUP also reloads).",
       seconds_param([](Config& c) -> Seconds& { return c.filters.clamav.reload_check; }, 0.1, 86400)},
      {"clamav", "max_scan_size", "integer", "104857600", "Octets scanned per message (CL_ENGINE_MAX_SCANSIZE).",
       size_param([](Config& c) -> size_t& { return c.filters.clamav.max_scan_size; }, 1024, kBig)},
      {"clamav", "max_file_size", "integer", "26214400", "Largest attachment or archive member scanned (CL_ENGINE_MAX_FILESIZE).",
       size_param([](Config& c) -> size_t& { return c.filters.clamav.max_file_size; }, 1024, kBig)},
      {"clamav", "max_files", "integer", "10000", "Files scanned inside one message (CL_ENGINE_MAX_FILES).",
       size_param([](Config& c) -> size_t& { return c.filters.clamav.max_files; }, 1, 1000000)},
      {"clamav", "max_recursion", "integer", "16", "Nesting of archives and MIME parts (CL_ENGINE_MAX_RECURSION).",
       size_param([](Config& c) -> size_t& { return c.filters.clamav.max_recursion; }, 1, 100)},
      {"clamav", "max_scan_time", "seconds", "30", "Scan time per message (CL_ENGINE_MAX_SCANTIME).",
       seconds_param([](Config& c) -> Seconds& { return c.filters.clamav.max_scan_time; }, 0.1, 3600)},
      {"clamav", "on_limit", "string", "accept", "A message exceeding a scan limit: \"accept\" (relayed, logged), \"tempfail\" (451 4.3.0) or \"reject\" (554 5.7.1).",
       one_of([](Config& c) -> std::string& { return c.filters.clamav.on_limit; }, {"accept", "tempfail", "reject"})},

      {"ocr", "words_file", "string", "(required for ocr)", "Word list matched against the text read from images: one word or phrase per line, optionally \"= weight\"; '#' comments. Re-read on reload.",
       string_param([](Config& c) -> std::string& { return c.filters.ocr.words_file; })},
      {"ocr", "language", "string", "eng", "Tesseract language(s), e.g. \"eng+deu\" (needs tesseract-ocr-LANG).",
       string_param([](Config& c) -> std::string& { return c.filters.ocr.language; })},
      {"ocr", "datapath", "string", "\"\" (Tesseract's default)", "Directory holding LANG.traineddata.",
       string_param([](Config& c) -> std::string& { return c.filters.ocr.datapath; })},
      {"ocr", "page_seg_mode", "string", "auto", "Tesseract page segmentation: \"auto\", \"single_block\" or \"sparse_text\".",
       one_of([](Config& c) -> std::string& { return c.filters.ocr.page_seg_mode; }, {"auto", "single_block", "sparse_text"})},
      {"ocr", "match_threshold", "number", "0.25", "Fuzzy match: largest normalised edit distance (0 = exact) between a list entry and the text read.",
       number_param([](Config& c) -> double& { return c.filters.ocr.match_threshold; }, 0, 0.5)},
      {"ocr", "score_base", "number", "3", "Score of the first hit.",
       number_param([](Config& c) -> double& { return c.filters.ocr.score_base; }, 0, 1000)},
      {"ocr", "score_per_hit", "number", "1", "Score of each further unit of hit weight.",
       number_param([](Config& c) -> double& { return c.filters.ocr.score_per_hit; }, 0, 1000)},
      {"ocr", "score_max", "number", "10", "Cap of the OCR score.",
       number_param([](Config& c) -> double& { return c.filters.ocr.score_max; }, 0, 1000)},
      {"ocr", "reject_score", "number", "0", "OCR score at or above which the message is refused at once (554 5.7.1); 0 = only the profile's scores decide.",
       number_param([](Config& c) -> double& { return c.filters.ocr.reject_score; }, 0, 1000)},
      {"ocr", "mismatch_score", "number", "0.5", "Score of an image whose declared Content-Type disagrees with its content.",
       number_param([](Config& c) -> double& { return c.filters.ocr.mismatch_score; }, 0, 1000)},
      {"ocr", "max_images", "integer", "8", "Images read per message; more are skipped and counted.",
       size_param([](Config& c) -> size_t& { return c.filters.ocr.max_images; }, 1, 1000)},
      {"ocr", "max_pixels", "integer", "16000000", "Largest image (width x height, or a GIF's screen) decoded; larger ones are skipped (decompression bombs).",
       size_param([](Config& c) -> size_t& { return c.filters.ocr.max_pixels; }, 1024, 1000000000)},
      {"ocr", "min_width", "integer", "24", "Narrower images are not read (tracking pixels, spacers).",
       size_param([](Config& c) -> size_t& { return c.filters.ocr.min_width; }, 1, 100000)},
      {"ocr", "min_height", "integer", "12", "Lower images are not read.",
       size_param([](Config& c) -> size_t& { return c.filters.ocr.min_height; }, 1, 100000)},
      {"ocr", "max_decoded_bytes", "integer", "67108864", "Pixel octets decoded per message, all images and frames.",
       size_param([](Config& c) -> size_t& { return c.filters.ocr.max_decoded_bytes; }, 65536, kBig)},
      {"ocr", "max_frames", "integer", "64", "Frames of an animated GIF decoded.",
       size_param([](Config& c) -> size_t& { return c.filters.ocr.max_frames; }, 1, 10000)},
      {"ocr", "upscale_below", "integer", "150", "Images whose shorter side is below this many pixels are scaled 2x before OCR (0 = never).",
       size_param([](Config& c) -> size_t& { return c.filters.ocr.upscale_below; }, 0, 100000)},
      {"ocr", "pdf_max_pages", "integer", "3", "PDF attachments: pages read from the first (their text layer is matched; a page without text is rendered and OCR'd as an image); 0 = PDFs are not read.",
       size_param([](Config& c) -> size_t& { return c.filters.ocr.pdf_max_pages; }, 0, 1000)},
      {"ocr", "pdf_dpi", "integer", "100", "Resolution of the pictures of text-less PDF pages (lowered for a page past ocr.max_pixels).",
       size_param([](Config& c) -> size_t& { return c.filters.ocr.pdf_dpi; }, 30, 600)},
      {"ocr", "image_timeout", "seconds", "3", "OCR time of one image; past it the image's text so far is used.",
       seconds_param([](Config& c) -> Seconds& { return c.filters.ocr.image_timeout; }, 0.01, 600)},
      {"ocr", "budget", "seconds", "10", "OCR time of one message; past it the filter judges what it read and counts the rest as skipped (keep it below ocr.timeout).",
       seconds_param([](Config& c) -> Seconds& { return c.filters.ocr.budget; }, 0.01, 3600)},
      {"ocr", "cache_size", "integer", "10000", "OCR results kept in memory by image hash (0 = no cache).",
       size_param([](Config& c) -> size_t& { return c.filters.ocr.cache_size; }, 0, 10000000)},
      {"ocr", "cache_ttl", "seconds", "86400", "How long a cached OCR result is used.",
       seconds_param([](Config& c) -> Seconds& { return c.filters.ocr.cache_ttl; }, 1, 31536000)},
      {"ocr", "cache_perceptual", "boolean", "false", "Also key the cache by size + perceptual hash (dHash), so re-encoded copies of a picture hit; a rare collision reuses another picture's text.",
       bool_param([](Config& c) -> bool& { return c.filters.ocr.cache_perceptual; })},
  };
  for (const auto& k : known_filters()) {
    rows.push_back({k.name, "timeout", "seconds", "", "", filter_timeout(k.name)});
    rows.push_back({k.name, "on_error", "string", "", "", filter_on_error(k.name)});
  }
  // Docs for the generated rows (the string_views must outlive the table: keep them static).
  static std::vector<std::string> docs;
  if (docs.empty())
    for (const auto& k : known_filters()) {
      docs.push_back(fmt::format("{:g}", k.defaults.timeout.count()));
      docs.push_back(fmt::format("Filter {}: a check still running after this is abandoned and on_error applies.", k.name));
      docs.push_back(k.defaults.on_error == OnError::TempFail ? "tempfail" : "continue");
      docs.push_back(fmt::format("Filter {}: on error or timeout, \"tempfail\" (451 4.3.0) or \"continue\" (as if the filter had not run).", k.name));
    }
  size_t first = rows.size() - 2 * known_filters().size();
  for (size_t i = 0; i < 2 * known_filters().size(); ++i) {
    rows[first + i].default_text = docs[2 * i];
    rows[first + i].doc = docs[2 * i + 1];
  }
  return rows;
}

}  // namespace config
