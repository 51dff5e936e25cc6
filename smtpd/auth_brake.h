// The AUTH brake beyond one connection (issue 12): failed logins are counted per client address,
// per login and per address+login pair across all the connections of this instance; the answer to
// every AUTH, success or failure alike, waits n * auth.failure_delay after the command (n = the
// most failures counted for the connection, the address, its network or the login; at most auth.max_delay),
// so its timing tells nothing — and a user with no failed attempt behind it is answered at once; past auth.address_failure_limit,
// auth.network_failure_limit (the address's /24, or /64 for IPv6) or auth.login_failure_limit the answer is 454 4.7.0
// before the password is even checked.
// A success forgives only the failures of its own login from its own address (a user's typos), so
// an attacker with one valid account cannot wipe the count of its other guesses.
//
// Where the counts live is behind WindowCounts (smtpd/window_counts.h): LocalWindowCounts (memory,
// bounded, this instance) or RedisWindowCounts (the farm's, on Redis). Pure apart from the store: the
// clock is passed in.
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "smtpd/window_counts.h"

namespace smtpd {

using AuthClock = CountsClock;

struct AuthBrakeSettings {
  AuthClock::duration delay{};      // auth.failure_delay
  AuthClock::duration max_delay{};  // auth.max_delay
  size_t address_limit = 0;         // auth.address_failure_limit (0 = off)
  size_t login_limit = 0;           // auth.login_failure_limit (0 = off)
  size_t network_limit = 0;         // auth.network_failure_limit: the /24 (IPv4) or /64 (IPv6) (0 = off)
  AuthClock::duration window{};     // auth.failure_window
};

// What is known before the password is checked.
struct AuthStanding {
  bool refused = false;              // 454 4.7.0 without a password check
  AuthClock::duration delay{};       // answer (whatever it is) this long after the command
  size_t address_failures = 0, login_failures = 0, network_failures = 0;  // for the log
};

class AuthBrake {
 public:
  explicit AuthBrake(std::shared_ptr<WindowCounts> store) : store_(std::move(store)) {}

  // `connection_failures`: failures so far on this connection. `login` as the client sent it
  // (compared case-insensitively).
  AuthStanding standing(std::string_view ip, std::string_view login, size_t connection_failures,
                        const AuthBrakeSettings& s, AuthClock::time_point now);
  void failed(std::string_view ip, std::string_view login, const AuthBrakeSettings& s, AuthClock::time_point now);
  void succeeded(std::string_view ip, std::string_view login, const AuthBrakeSettings& s, AuthClock::time_point now);

 private:
  std::shared_ptr<WindowCounts> store_;
};

}  // namespace smtpd
