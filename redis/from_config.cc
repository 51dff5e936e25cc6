// [redis] -> redis::ClientConfig (from_config.h): secrets and TLS files read here, at start.
#include "redis/from_config.h"

#include <fmt/format.h>
#include <fstream>

#include "core/host_port.h"

namespace redis {
namespace {
// The first line of a secret file (a trailing CR dropped); false when it cannot be read.
bool read_secret(const std::string& path, std::string& out) {
  std::ifstream in(path);
  if (!in || !std::getline(in, out)) return false;
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return true;
}
}  // namespace

std::optional<ClientConfig> client_config(const config::Redis& r, std::string& err) {
  if (!r.enabled()) return std::nullopt;
  ClientConfig rc;
  rc.host = r.host;
  rc.port = r.port;
  rc.username = r.username;
  rc.db = r.db;
  rc.timeout = r.timeout;
  rc.max_inflight = r.max_inflight;
  rc.master_name = r.master_name;
  for (const auto& s : r.sentinels) {
    core::HostPort hp;
    if (std::string e = core::parse_host_port(s, hp, core::HostSyntax::Name); !e.empty()) {
      err = "redis.sentinels: '" + s + "': " + e;  // checked at load already
      return std::nullopt;
    }
    rc.sentinels.emplace_back(hp.host, hp.port);
  }
  if (!r.password_file.empty() && !read_secret(r.password_file, rc.password)) {
    err = "redis.password_file: cannot read " + r.password_file;
    return std::nullopt;
  }
  if (!r.sentinel_password_file.empty() && !read_secret(r.sentinel_password_file, rc.sentinel_password)) {
    err = "redis.sentinel_password_file: cannot read " + r.sentinel_password_file;
    return std::nullopt;
  }
  if (r.tls) {
    std::string why;
    rc.tls = tls_context(r.tls_ca_file, r.tls_cert_file, r.tls_key_file, why);
    if (!rc.tls) {
      err = "redis." + why;
      return std::nullopt;
    }
    rc.tls_server_name = r.tls_server_name;
  }
  return rc;
}

std::string store_key(std::string_view what, const std::optional<ClientConfig>& rc, const config::Redis& r, size_t local_size) {
  if (!rc) return fmt::format("{} local size={}", what, local_size);
  return fmt::format("{} {} db={} user={} timeout={} prefix={} tls={} size={}", what, display_name(*rc), rc->db,
                     rc->username, rc->timeout.count(), r.key_prefix, rc->tls ? 1 : 0, local_size);
}

core::Dependency store_dependency(std::string_view filter, const config::Redis& r, std::function<std::string()> down_reason) {
  std::string ignored;
  auto rc = client_config(r, ignored);
  return {"redis", fmt::format("{} ({})", rc ? display_name(*rc) : std::string("?"), filter), nullptr, std::move(down_reason)};
}

}  // namespace redis
