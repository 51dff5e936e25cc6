// Directory factory (factory.h).
#include "directory/factory.h"

#include <fmt/format.h>

#include "directory/ldap_directory.h"
#include "directory/users_file.h"

namespace ldap {

DirectoryOrError make_directory(const config::Directory& opts, std::shared_ptr<net::BlockingPool> pool) {
  if (opts.type == "none") return {nullptr, {}};
  if (opts.type != "file" && opts.type != "ldap")
    return {nullptr, fmt::format("directory: unknown type '{}' (expected none, file or ldap)", opts.type)};
  if (!pool) pool = std::make_shared<net::BlockingPool>("directory", opts.threads, opts.queue);
  if (opts.type == "file") {
    auto r = load_users_file(opts, std::move(pool));
    return {r.dir, r.error};
  }
  auto r = make_ldap_directory(opts, std::move(pool));
  return {r.dir, r.error};
}

}  // namespace ldap

