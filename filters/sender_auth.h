// filters::SenderAuth — what the sender-authentication filters (spf, dkim) found in one
// transaction, for the filters after them in the chain (dmarc reads both).
// Contract:
//  * ChainRun makes a new one per transaction (at construction and on new_transaction()) and puts
//    it in every check's Context::auth; a check that was abandoned writes into its own
//    transaction's record only, never into the next one's.
//  * A filter records its results before its check returns; the chain runs checks in order, so a
//    later filter of the same transaction sees them. Unset means "that filter did not run".
//  * Thread-safe (a check may record from a worker-pool thread).
#pragma once
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace filters {

// RFC 8601 result words shared by spf, dkim and dmarc.
enum class AuthResult { None, Pass, Fail, SoftFail, Neutral, Policy, TempError, PermError };
inline std::string_view auth_result_name(AuthResult r) {
  switch (r) {
    case AuthResult::None: return "none";
    case AuthResult::Pass: return "pass";
    case AuthResult::Fail: return "fail";
    case AuthResult::SoftFail: return "softfail";
    case AuthResult::Neutral: return "neutral";
    case AuthResult::Policy: return "policy";
    case AuthResult::TempError: return "temperror";
    case AuthResult::PermError: return "permerror";
  }
  return "none";
}

struct SpfFacts {
  AuthResult result = AuthResult::None;
  std::string domain;          // the checked identity's domain (MAIL FROM's, or the HELO name)
  bool helo_identity = false;  // the null sender: the identity was postmaster@<helo>
};

struct DkimFacts {              // one signature
  AuthResult result = AuthResult::None;
  std::string domain;     // d=
  std::string identity;   // i= ("" when absent)
  std::string selector;   // s=
  std::string algorithm;  // a=
  std::string b_prefix;   // the first characters of b= (header.b)
  std::string detail;     // why, for the log and the header comment
};

class SenderAuth {
 public:
  void set_spf(SpfFacts f) {
    std::lock_guard lk(mu_);
    spf_ = std::move(f);
  }
  std::optional<SpfFacts> spf() const {
    std::lock_guard lk(mu_);
    return spf_;
  }
  // Every signature of the message (empty: the message is unsigned).
  void set_dkim(std::vector<DkimFacts> f) {
    std::lock_guard lk(mu_);
    dkim_ = std::move(f);
  }
  std::optional<std::vector<DkimFacts>> dkim() const {
    std::lock_guard lk(mu_);
    return dkim_;
  }

 private:
  mutable std::mutex mu_;
  std::optional<SpfFacts> spf_;
  std::optional<std::vector<DkimFacts>> dkim_;
};

}  // namespace filters
