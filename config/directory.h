// The [directory] config section: plain values, no I/O. The config loader fills them
// (config/parameters.cc); directory/factory.h turns them into a Directory.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace config {

// Where users and recipients live (directory/directory.h). type "none": only relay.local_domains.
struct Directory {
  std::string type = "none";                 // "none", "file" or "ldap"
  std::string users_file;                    // type "file"
  std::vector<std::string> uris;             // type "ldap": tried in order
  std::string base_dn;
  std::string bind_dn;                       // empty: anonymous searches
  std::string bind_password_file;            // first line is the password
  std::chrono::duration<double> timeout{5};  // connect + each operation
  std::string recipient_filter = "(|(mail=%s)(mailAlternateAddress=%s))";  // %s: RFC 4515-escaped address
  std::string login_filter = "(|(uid=%s)(mail=%s))";                      // %s: escaped login
  std::string mail_attribute = "mail";
  std::vector<std::string> alternate_attributes{"mailAlternateAddress"};
  std::string status_attribute = "accountStatus";  // empty: no status check
  std::vector<std::string> disabled_values{"disabled", "deleted", "noaccess"};
  std::vector<std::string> catchall_domains;  // unknown local parts in these domains are Found
  std::chrono::duration<double> positive_ttl{300};
  std::chrono::duration<double> negative_ttl{60};
  size_t cache_size = 10000;
  size_t threads = 2;                        // LDAP worker threads (each owns its connections)
  size_t queue = 256;                        // pending directory requests; past it: Unavailable
};

}  // namespace config
