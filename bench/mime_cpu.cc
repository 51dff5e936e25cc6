// CPU per message of the MIME work of the data phase (issue 11, "One MIME parse per message"):
//   rules        the rules filter's check at Data (header + body rules), through its worker pool
//   rules+ocr    a chain with rules then ocr at Data (no images: the ocr filter only walks the parts)
//   parse        the bare GMime work one message costs the filters (old API: headers() + body_text()
//                + binary_parts(), three parses; new API: one mime::Message::parse)
// on a 4 KB multipart/alternative message (quoted-printable text + HTML + a small PDF-less
// attachment). Figures: process CPU time (every thread: I/O thread, pool threads) and wall time,
// divided by the message count. Build: ninja -C build mime_bench; run: build/tests/mime_bench [N].
// Compiles against the tree before issue 11 with -DMX_BENCH_OLD_API (for the "before" column).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
  auto parse_only = [&] {
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

  std::printf("message %zu octets, %d messages per figure; microseconds per message (process CPU, wall)\n", raw->size(), n);
  for (int rep = 0; rep < 3; ++rep) {
    Figures a = measure(n, data_phase(rules_chain));
    Figures b = measure(n, data_phase(both_chain));
    Figures c = measure(n, parse_only);
    std::printf("rules %.1f cpu %.1f wall | rules+ocr %.1f cpu %.1f wall | parse %.1f cpu %.1f wall\n", a.cpu_us, a.wall_us,
                b.cpu_us, b.wall_us, c.cpu_us, c.wall_us);
  }
  return 0;
}
