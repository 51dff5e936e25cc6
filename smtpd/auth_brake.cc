// The AUTH brake: keys, counts and the wait before an answer (auth_brake.h).
#include "smtpd/auth_brake.h"

#include <algorithm>

#include "core/ip.h"
#include "core/text.h"

namespace smtpd {
namespace {

// One key space per dimension; an address never holds '\n', so the pair key is unambiguous.
std::string address_key(std::string_view ip) { return "a\n" + std::string(ip); }
std::string login_key(std::string_view login) { return "l\n" + core::lowercase(login); }
// The address's /24 (IPv4) or /64 (IPv6); text that is not an address stands for itself.
std::string network_key(std::string_view ip) {
  auto a = core::IpAddress::parse(ip);
  if (!a) return "n\n" + std::string(ip);
  int bits = a->is_v6() ? 64 : 24;
  return "n\n" + a->prefix(bits).str() + "/" + std::to_string(bits);
}
std::string pair_key(std::string_view ip, std::string_view login) {
  return "p\n" + std::string(ip) + "\n" + core::lowercase(login);
}

}  // namespace

AuthStanding AuthBrake::standing(std::string_view ip, std::string_view login, size_t connection_failures,
                                 const AuthBrakeSettings& s, AuthClock::time_point now) {
  AuthStanding st;
  if (s.address_limit) st.address_failures = store_->count(address_key(ip), now);
  if (s.login_limit) st.login_failures = store_->count(login_key(login), now);
  if (s.network_limit) st.network_failures = store_->count(network_key(ip), now);
  st.refused = (s.address_limit && st.address_failures >= s.address_limit) ||
               (s.login_limit && st.login_failures >= s.login_limit) ||
               (s.network_limit && st.network_failures >= s.network_limit);
  size_t n = std::max({connection_failures, st.address_failures, st.login_failures, st.network_failures});
  auto d = s.delay * static_cast<double>(n);
  st.delay = std::min(std::chrono::duration_cast<AuthClock::duration>(d), s.max_delay);
  return st;
}

void AuthBrake::failed(std::string_view ip, std::string_view login, const AuthBrakeSettings& s, AuthClock::time_point now) {
  if (s.address_limit) store_->add(address_key(ip), now, s.window);
  if (s.login_limit) store_->add(login_key(login), now, s.window);
  if (s.network_limit) store_->add(network_key(ip), now, s.window);
  if (s.address_limit || s.login_limit || s.network_limit) store_->add(pair_key(ip, login), now, s.window);
}

void AuthBrake::succeeded(std::string_view ip, std::string_view login, const AuthBrakeSettings& s,
                          AuthClock::time_point now) {
  if (!s.address_limit && !s.login_limit && !s.network_limit) return;
  std::string pair = pair_key(ip, login);
  size_t own = store_->count(pair, now);
  if (own == 0) return;
  store_->forgive(address_key(ip), own, now);
  store_->forgive(login_key(login), own, now);
  if (s.network_limit) store_->forgive(network_key(ip), own, now);
  store_->forgive(pair, own, now);
}

}  // namespace smtpd
