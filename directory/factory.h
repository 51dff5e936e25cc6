// Builds the configured Directory from the [directory] options (config/directory.h).
//  * type "none": dir == nullptr and error empty (recipients: relay.local_domains only).
//  * type "file": the users file is read and validated now (users_file.h).
//  * type "ldap": the options are checked now; connections open on first use (ldap_directory.h).
//  * Any problem: dir == nullptr and error says what ("path:line: ..." for the users file).
//    Never throws.
// `pool` runs the blocking work (libldap calls, crypt). When null, a pool named "directory" with
// options.threads threads and an options.queue queue is made and owned by the directory.
#pragma once
#include <memory>
#include <string>

#include "directory/directory.h"
#include "config/directory.h"
#include "net/blocking_pool.h"

namespace ldap {

struct DirectoryOrError {
  std::shared_ptr<Directory> dir;
  std::string error;
};

DirectoryOrError make_directory(const config::Directory& opts, std::shared_ptr<net::BlockingPool> pool);

}  // namespace ldap

namespace ldap {
// The host and port an LDAP URI connects to (ldap_url_parse; default ports 389/636), for health
// checks. False for ldapi:// (a local socket) and for a URI libldap does not accept.
bool uri_endpoint(const std::string& uri, std::string& host, uint16_t& port);
}  // namespace ldap
