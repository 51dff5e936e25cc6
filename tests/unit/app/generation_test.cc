// Building a config generation (app/generation.h): what only the subsystems can check (a
// certificate that does not load, a directory that cannot be read, a filter that cannot be built)
// is still reported as "file:line: what", pointing into the table that configured it.
#include "app/generation.h"

#include <gtest/gtest.h>

#include "config/load.h"
#include "filters/registry/registry.h"

namespace {

const std::string kMinimal =
    "[[listener]]\naddress = \"127.0.0.1:2525\"\n"
    "[relay]\nlocal_domains = [\"example.org\"]\n"
    "[qmqp]\nservers = [\"127.0.0.1:628\"]\n";

std::string build_error(const std::string& text) {
  auto r = config::load_string(text, "t.toml", filters::config_schema());
  EXPECT_TRUE(r.config) << r.error;
  if (!r.config) return r.error;
  auto g = app::build_generation(r.config);
  EXPECT_FALSE(g.snap);
  return g.error;
}

TEST(Generation, MinimalConfigBuildsOneChainPerProfile) {
  auto r = config::load_string(kMinimal, "t.toml", filters::config_schema());
  ASSERT_TRUE(r.config) << r.error;
  auto g = app::build_generation(r.config);
  ASSERT_TRUE(g.snap) << g.error;
  EXPECT_EQ(g.snap->chains.size(), r.config->profiles.size());
  EXPECT_EQ(g.snap->chains.at("mx")->size(), 1u);  // relay_control
  ASSERT_EQ(g.snap->relay.servers.size(), 1u);
  EXPECT_EQ(g.snap->relay.servers[0].port, 628);
}

// The headers mxfront writes ([spam], as configured) are removed from clients' messages.
TEST(Generation, OwnedHeadersAreTheConfiguredSpamHeaders) {
  auto r = config::load_string(kMinimal + "[spam]\nscore_header = \"X-Our-Score\"\n", "t.toml", filters::config_schema());
  ASSERT_TRUE(r.config) << r.error;
  auto g = app::build_generation(r.config);
  ASSERT_TRUE(g.snap) << g.error;
  std::vector<std::string> names;
  for (const auto& h : g.snap->owned_headers) names.push_back(h.name);
  EXPECT_EQ(names, (std::vector<std::string>{"X-Our-Score", "X-Spam-Status", "X-Spam-Report"}));
}

TEST(Generation, UnreadableCertificateIsReportedAtTheTlsTable) {
  std::string err = build_error(kMinimal + "[tls]\ncert_file = \"/nonexistent.pem\"\nkey_file = \"/nonexistent.key\"\n");
  EXPECT_EQ(err.rfind("t.toml:7: tls.cert_file '/nonexistent.pem'", 0), 0u) << err;
}

TEST(Generation, UnreadableUsersFileIsReportedAtTheDirectoryTable) {
  std::string err = build_error(kMinimal + "[directory]\ntype = \"file\"\nusers_file = \"/nonexistent/users\"\n");
  EXPECT_EQ(err.rfind("t.toml:7: directory: ", 0), 0u) << err;
  EXPECT_NE(err.find("/nonexistent/users"), std::string::npos) << err;
}

TEST(Generation, FilterThatCannotBeBuiltIsReportedAtItsTable) {
  std::string err = build_error(kMinimal + "[profile.mx]\nfilters = [\"relay_control\", \"clamav\"]\n"
                                           "[clamav]\ndatabase_dir = \"/nonexistent/clamav-db\"\n");
  EXPECT_EQ(err.rfind("t.toml:9: ", 0), 0u) << err;
  EXPECT_NE(err.find("/nonexistent/clamav-db"), std::string::npos) << err;
}

}  // namespace
