// rspamd's /checkv2 request headers and JSON answer (protocol.h); nlohmann::json parses, nothing
// here reads JSON or HTTP by hand.
#include "filters/rspamd/protocol.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/reply.h"
#include "core/text.h"

namespace filters::rspamd {
namespace {
namespace R = core::replies;
using json = nlohmann::json;

std::string one_line(std::string_view s) { return core::safe_text(s, 1000); }

std::string string_at(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Symbols as tags, the heaviest (by |score|) first, at most kMaxTags; zero-score symbols are kept
// after the scored ones (they still say what rspamd saw).
std::vector<std::string> tags_of(const json& symbols) {
  std::vector<std::pair<std::string, double>> all;
  if (!symbols.is_object()) return {};
  for (const auto& [name, sym] : symbols.items()) {
    double score = 0;
    if (sym.is_object()) {
      auto it = sym.find("score");
      if (it != sym.end() && it->is_number()) score = it->get<double>();
    }
    all.emplace_back(core::safe_text(name, 100, core::SafeChars::Token), score);
  }
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return std::fabs(a.second) > std::fabs(b.second); });
  if (all.size() > kMaxTags) all.resize(kMaxTags);
  std::vector<std::string> out;
  for (const auto& [name, score] : all) out.push_back(fmt::format("{}={:g}", name, score));
  return out;
}

// One add_headers value: a string, {"value": ..., "order": n}, or a list of those.
void add_values(const std::string& name, const json& v, std::vector<HeaderField>& out) {
  if (out.size() >= kMaxHeaderEdits) return;
  if (v.is_string()) {
    out.push_back({name, v.get<std::string>().substr(0, kMaxHeaderValue)});
  } else if (v.is_object()) {
    std::string value = string_at(v, "value");
    if (v.contains("value")) out.push_back({name, value.substr(0, kMaxHeaderValue)});
  } else if (v.is_array()) {
    for (const auto& e : v) add_values(name, e, out);
  }
}

// One remove_headers entry: {name: N}, N the occurrence rspamd wants gone (0 every one, N > 0 the
// N-th, N < 0 the |N|-th from the end; rspamd's protocol.md "Removing headers"). A value that is
// not an integer within +-kMaxOccurrence is not understood: no field goes for it.
void remove_value(const std::string& name, const json& n, std::vector<HeaderRemoval>& out) {
  if (out.size() >= kMaxHeaderEdits || !n.is_number()) return;
  double d = n.get<double>();
  if (d != std::trunc(d) || std::fabs(d) > kMaxOccurrence) return;
  out.push_back({name, static_cast<int>(d)});
}

void header_edits(const json& milter, Verdict& v) {
  if (!milter.is_object()) return;
  if (auto it = milter.find("remove_headers"); it != milter.end() && it->is_object())
    for (const auto& [name, n] : it->items()) remove_value(name, n, v.remove_headers);
  if (auto it = milter.find("add_headers"); it != milter.end() && it->is_object())
    for (const auto& [name, value] : it->items()) add_values(name, value, v.add_headers);
}

}  // namespace

Headers request_headers(const Context& ctx, const Settings& s, std::string_view hostname) {
  Headers h;
  h.emplace_back("IP", ctx.client_ip.str());
  if (!ctx.helo.empty()) h.emplace_back("Helo", one_line(ctx.helo));
  h.emplace_back("From", ctx.sender.null() ? std::string("<>") : one_line(ctx.sender.str()));
  for (const auto& r : ctx.recipients) h.emplace_back("Rcpt", one_line(r.str()));
  if (ctx.authenticated && !ctx.login.empty()) h.emplace_back("User", one_line(ctx.login));
  // our name: rspamd's Hostname header is the *client's* resolved name (rspamd looks it up itself
  // when it is missing), MTA-Name the receiving MTA's (its Authentication-Results authserv-id)
  if (!hostname.empty()) h.emplace_back("MTA-Name", one_line(hostname));
  h.emplace_back("Queue-Id", one_line(ctx.message_id.empty() ? ctx.session_id : ctx.message_id));
  if (!s.settings_id.empty()) h.emplace_back("Settings-ID", one_line(s.settings_id));
  if (!s.password.empty()) h.emplace_back("Password", s.password);
  return h;
}

Answer parse_answer(std::string_view body, ScoreMode mode) {
  Answer a;
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    a.verdict = Verdict::failure("rspamd: answer is not a JSON object");
    return a;
  }
  a.action = string_at(j, "action");
  if (auto it = j.find("score"); it != j.end() && it->is_number()) a.score = it->get<double>();
  std::string message;
  if (auto it = j.find("messages"); it != j.end() && it->is_object()) message = string_at(*it, "smtp_message");

  Verdict& v = a.verdict;
  if (a.action == "reject") {
    v.action = Action::Reject;
    v.reply = R::rspamd_rejected(message);
  } else if (a.action == "soft reject" || a.action == "greylist") {
    v.action = Action::TempFail;
    v.reply = R::rspamd_tempfailed(message);
  } else if (a.action != "add header" && a.action != "rewrite subject" && a.action != "no action") {
    std::string what = a.action.empty() ? "no action field" : "unknown action '" + core::safe_text(a.action, 40) + "'";
    a.action.clear();
    a.verdict = Verdict::failure("rspamd: " + what);
    return a;
  }
  v.reason = fmt::format("rspamd action={} score={:g}", a.action, a.score);
  if (mode == ScoreMode::Add) v.score = a.score;
  v.tag = a.action == "add header" || a.action == "rewrite subject";
  if (auto it = j.find("symbols"); it != j.end()) v.tags = tags_of(*it);
  // the signature first: rspamd's milter headers must not crowd it out of kMaxHeaderEdits
  if (auto it = j.find("dkim-signature"); it != j.end()) add_values("DKIM-Signature", *it, v.add_headers);
  if (auto it = j.find("milter"); it != j.end()) header_edits(*it, v);
  if (std::string subject = string_at(j, "subject"); a.action == "rewrite subject" && !subject.empty()) {
    v.remove_headers.push_back({"Subject", 0});
    v.add_headers.push_back({"Subject", subject.substr(0, kMaxHeaderValue)});
  }
  return a;
}

}  // namespace filters::rspamd
