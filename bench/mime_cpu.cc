// CPU per message of the MIME work of the data phase (issue 11, "One MIME parse per message"):
//   rules        the rules filter's check at Data (header + body rules), through its worker pool
//   rules+ocr    a chain with rules then ocr at Data (no images: the ocr filter only walks the parts)
//   MIME work    the bare GMime work one message costs the filters, on one thread (old API:
//                headers() + body_text() [+ binary_parts()], two [three] parses; new API: one
//                mime::Message::parse with the filters' needs)
// on a 4 KB multipart/alternative message (quoted-printable text + HTML + a small
// octet-stream attachment). Figures: process CPU time (every thread: I/O thread, pool threads) and wall time,
// divided by the message count; the best of R repetitions. Build: ninja -C build mime_bench;
// run: build/tests/mime_bench [N=10000] [R=5].
// Compiles against the tree before issue 11 with -DMX_BENCH_OLD_API (for the "before" column).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>
#include <string>

#include "core/base64.h"
#include "core/log.h"
#include "filters/chain.h"
#include "filters/mime_text.h"
#include "filters/ocr/ocr_filter.h"
#include "filters/rules/rules.h"
#include "../tests/unit/io_thread.h"

using namespace filters;

namespace {

double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
double wall_now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::string message_4k() {
  std::string text, html;
  for (int i = 0; text.size() < 1400; ++i)
    text += "Dear customer, your order n=C2=B0" + std::to_string(1000 + i) + " has been shipped and will arrive soon.=\n\n";
  for (int i = 0; html.size() < 1300; ++i)
    html += "<p>Line " + std::to_string(i) + ": <b>your order</b> has been shipped.</p>\n";
  std::string attachment = core::base64_encode(std::string(600, 'z'));
  std::string m =
      "Return-Path: <shop@example.net>\nReceived: from mx.example.net (mx.example.net [192.0.2.1])\n\tby mx.example.org\n"
      "From: Shop <shop@example.net>\nTo: bob@example.org\nSubject: =?UTF-8?Q?Your_order_has_shipped_=E2=9C=93?=\n"
      "Date: Sun, 6 Dec 2026 16:00:00 +0000\nMessage-ID: <1234@example.net>\nMIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"M\"\n\n"
      "--M\nContent-Type: multipart/alternative; boundary=\"A\"\n\n"
      "--A\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" + text +
      "\n--A\nContent-Type: text/html; charset=utf-8\n\n" + html + "\n--A--\n"
      "--M\nContent-Type: application/octet-stream; name=\"invoice.dat\"\nContent-Transfer-Encoding: base64\n\n" +
      attachment + "\n--M--\n";
  return m;
}

rules::Rule rule(std::string name, rules::Kind kind, std::string pattern, std::string header = "") {
  rules::Rule r;
  r.name = std::move(name);
  r.kind = kind;
  r.pattern = std::move(pattern);
  r.score = 1;
  r.header = std::move(header);
  return r;
}

struct Figures {
  double cpu_us, wall_us;
};

template <class F>
Figures measure(int n, F one) {
  for (int i = 0; i < n / 10; ++i) one();  // warm-up
  double c0 = cpu_now(), w0 = wall_now();
  for (int i = 0; i < n; ++i) one();
  return {(cpu_now() - c0) / n * 1e6, (wall_now() - w0) / n * 1e6};
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 10000;
  int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  core::log().set_level(spdlog::level::warn);
  const auto raw = std::make_shared<const std::string>(message_4k());
  auto pool = std::make_shared<net::BlockingPool>("bench", 2, 64);
  testing_support::IoThread io;

  rules::Settings rs;
  rs.rules = {rule("h1", rules::Kind::Header, "(?i)casino", "Subject"), rule("h2", rules::Kind::Header, "^evil$", "X-Mailer"),
              rule("h3", rules::Kind::Header, "(?i)viagra", "From"), rule("b1", rules::Kind::Body, "(?i)cheap\\s+viagra"),
              rule("b2", rules::Kind::Body, "(?i)lottery winner"), rule("b3", rules::Kind::Body, "bitcoin wallet [13][a-km-zA-HJ-NP-Z1-9]{25,34}")};
  std::string err;
  auto rules_filter = Rules::build(rs, pool, err);
  if (!rules_filter) {
    std::fprintf(stderr, "rules: %s\n", err.c_str());
    return 1;
  }
  auto words = ocr::parse_words("cheap viagra\n", "bench");
  auto ocr_filter = std::make_shared<OcrFilter>(ocr::Settings{}, *words.list, pool, nullptr);

  config::FilterSettings fs{config::Seconds(10), config::OnError::Continue};
  auto rules_chain = std::make_shared<Chain>();
  rules_chain->add(rules_filter, fs);
  auto both_chain = std::make_shared<Chain>();
  both_chain->add(rules_filter, fs);
  both_chain->add(ocr_filter, fs);

  auto data_phase = [&](const std::shared_ptr<Chain>& chain) {
    return [&, chain] {
      ChainRun run(chain, io.io().get_executor());
      Context ctx;
      ctx.message = raw;
      auto f = io.spawn<Verdict>([&run, ctx]() -> boost::asio::awaitable<Verdict> { co_return co_await run.run(Phase::Data, ctx); });
      f.get();
    };
  };
  // The bare MIME work, on this thread: what the rules filter needs, and what rules + ocr need.
  auto parse_rules = [&] {
#ifdef MX_BENCH_OLD_API
    auto h = mime::headers(*raw, Rules::kHeaderLimit);
    auto t = mime::body_text(*raw, rs.body_limit);
    if (h.empty() || t.empty()) std::abort();
#else
    auto m = mime::Message::parse(*raw, rules_filter->mime_needs());
    if (m.headers().empty() || m.text().empty()) std::abort();
#endif
  };
  auto parse_both = [&] {
#ifdef MX_BENCH_OLD_API
    auto h = mime::headers(*raw, Rules::kHeaderLimit);
    auto t = mime::body_text(*raw, rs.body_limit);
    auto p = mime::binary_parts(*raw, 256, raw->size());
    if (h.empty() || t.empty() || p.empty()) std::abort();
#else
    auto m = mime::Message::parse(*raw, mime::Limits::merge(rules_filter->mime_needs(), ocr_filter->mime_needs()));
    if (m.headers().empty() || m.text().empty() || m.binary_parts().empty()) std::abort();
#endif
  };

  struct Row {
    const char* name;
    std::function<void()> one;
    Figures best{1e18, 1e18};
  };
  std::vector<Row> rows = {{"rules filter (chain, pool)", data_phase(rules_chain)},
                           {"rules+ocr filters (chain, pool)", data_phase(both_chain)},
                           {"MIME work for rules (this thread)", parse_rules},
                           {"MIME work for rules+ocr (this thread)", parse_both}};
  // Minimum over repetitions: the machine is shared, interference only ever adds time.
  for (int rep = 0; rep < reps; ++rep)
    for (auto& r : rows) {
      Figures f = measure(n, r.one);
      r.best.cpu_us = std::min(r.best.cpu_us, f.cpu_us);
      r.best.wall_us = std::min(r.best.wall_us, f.wall_us);
    }
  std::printf("message %zu octets, %d messages x %d repetitions, best repetition; microseconds per message\n", raw->size(), n, reps);
  for (const auto& r : rows) std::printf("%-40s cpu %7.1f  wall %7.1f\n", r.name, r.best.cpu_us, r.best.wall_us);
  return 0;
}
