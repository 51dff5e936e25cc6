// Config loading: defaults, every kind of error reported as file:line, unknown keys refused.
#include "config/load.h"
#include "config/parameters.h"
#include "filters/registry/registry.h"
#include "smtp/protocol.h"

#include <gtest/gtest.h>

using config::load_string;

namespace {

const std::string kMinimal =
    "[[listener]]\naddress = \"127.0.0.1:2525\"\n"
    "[relay]\nlocal_domains = [\"Example.ORG\"]\n"
    "[qmqp]\nservers = [\"127.0.0.1:628\", \"[::1]:629\", \"mailbox.internal:628\"]\n";

// The documented default of a row is the struct's initialiser: for every row whose setter can show
// its value, the text in the row (what --config-doc and the README print) is what a Config holds
// before anything is loaded. "(...)" notes after the value are commentary and not compared; "\\|"
// is a '|' escaped for the Markdown table.
std::string documented_value(std::string text) {
  for (size_t i; (i = text.find("\\|")) != std::string::npos;) text.erase(i, 1);
  if (auto note = text.find(" ("); note != std::string::npos) text.resize(note);
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
  return text;
}

TEST(Config, EveryDocumentedDefaultIsTheStructsInitialiser) {
  const config::Schema& schema = filters::config_schema();
  int checked = 0;
  for (const auto& p : schema.rows) {
    if (!p.apply.show || p.default_text.empty() || p.default_text[0] == '(') continue;  // "(required)"
    config::Config c;
    if (const auto* a = schema.find_array(p.section)) a->push(c);
    std::string shown = p.apply.show(c);
    EXPECT_EQ(documented_value(p.default_text), documented_value(shown)) << p.section << "." << p.key;
    ++checked;
  }
  EXPECT_GT(checked, 80);  // the typed rows: most of the table
}

TEST(Config, TheEngineDefaultsAreTheConfigDefaults) {
  // smtp::Settings (below config in the layers) repeats the limits for its own unit tests.
  config::Config c;
  smtp::Settings s;
  EXPECT_EQ(s.line_length, c.limits.line_length);
  EXPECT_EQ(s.data_line_length, c.limits.data_line_length);
  EXPECT_EQ(s.message_size, c.limits.message_size);
  EXPECT_EQ(s.recipients, c.limits.recipients);
  EXPECT_EQ(s.error_limit, c.limits.errors);
  EXPECT_EQ(s.auth_failure_limit, c.auth.failure_limit);
}

TEST(Config, MinimalFileGetsDocumentedDefaults) {
  auto r = load_string(kMinimal, "t.toml", filters::config_schema());
  ASSERT_TRUE(r.config) << r.error;
  const auto& c = *r.config;
  EXPECT_EQ(c.limits.line_length, 512u);
  EXPECT_EQ(c.limits.recipients, 100u);
  EXPECT_EQ(c.limits.message_size, 10485760u);
  EXPECT_EQ(c.qmqp.connect_timeout.count(), 10000);
  EXPECT_EQ(c.qmqp.answer_timeout.count(), 60000);
  EXPECT_EQ(c.qmqp.failure_threshold, 3u);
  EXPECT_EQ(c.qmqp.open_time.count(), 30000);
  EXPECT_EQ(c.local_domains.at(0), "example.org");
  ASSERT_EQ(c.qmqp.servers.size(), 3u);
  EXPECT_EQ(c.qmqp.servers[1].host, "::1");
  EXPECT_EQ(c.qmqp.servers[1].port, 629);
  EXPECT_EQ(c.listeners.at(0).profile, "mx");
  EXPECT_EQ(c.hash.size(), 64u);
}

TEST(Config, BreakerSettings) {
  auto r = load_string(kMinimal + "failure_threshold = 0\nopen_time = 2.5\n", "t.toml", filters::config_schema());
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->qmqp.failure_threshold, 0u);
  EXPECT_EQ(r.config->qmqp.open_time.count(), 2500);
  auto bad = load_string(kMinimal + "open_time = 0\n", "t.toml", filters::config_schema());
  EXPECT_FALSE(bad.config);
}

TEST(Config, ValuesAreApplied) {
  auto r = load_string(kMinimal + "[limits]\nrecipients = 3\ncommand_timeout = 1.5\n[server]\nhostname = \"mx.test\"\n", "t.toml", filters::config_schema());
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->limits.recipients, 3u);
  EXPECT_DOUBLE_EQ(r.config->limits.command_timeout.count(), 1.5);
  EXPECT_EQ(r.config->hostname, "mx.test");
}

TEST(Config, Ipv6Listener) {
  auto r = load_string(kMinimal + "[[listener]]\naddress = \"[::1]:2526\"\n", "t.toml", filters::config_schema());
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->listeners.at(1).host, "::1");
  EXPECT_EQ(r.config->listeners.at(1).name(), "[::1]:2526");
}

struct Bad {
  const char* name;
  std::string text;
  std::string expect;  // substring of the error, which starts with "t.toml:LINE:"
};
class BadConfig : public ::testing::TestWithParam<Bad> {};
TEST_P(BadConfig, IsRefusedWithFileLineAndReason) {
  auto r = load_string(GetParam().text, "t.toml", filters::config_schema());
  EXPECT_FALSE(r.config);
  EXPECT_NE(r.error.find(GetParam().expect), std::string::npos) << r.error;
  EXPECT_EQ(r.error.rfind("t.toml:", 0), 0u) << r.error;
}
INSTANTIATE_TEST_SUITE_P(
    Config, BadConfig,
    ::testing::Values(
        Bad{"UnknownKey", kMinimal + "[limits]\nrecipient = 3\n", "t.toml:8: unknown key 'recipient' in [limits]"},
        Bad{"UnknownSection", kMinimal + "[limitz]\nx = 1\n", "t.toml:7: unknown section [limitz]"},
        Bad{"WrongType", kMinimal + "[limits]\nrecipients = \"ten\"\n", "t.toml:8: limits.recipients: expected an integer"},
        Bad{"OutOfRange", kMinimal + "[limits]\nline_length = 10\n", "t.toml:8: limits.line_length: must be between 512"},
        Bad{"NegativeTimeout", kMinimal + "[limits]\ncommand_timeout = -1\n", "must be between"},
        Bad{"BadListener", "[[listener]]\naddress = \"localhost:25\"\n", "t.toml:2: listener.address: expected a numeric"},
        Bad{"BadPort", "[[listener]]\naddress = \"127.0.0.1:99999\"\n", "bad port"},
        Bad{"NoListener", "[relay]\nlocal_domains = [\"a.b\"]\n[qmqp]\nservers = [\"127.0.0.1:1\"]\n", "t.toml:1: at least one [[listener]]"},
        Bad{"NoLocalDomains", "[[listener]]\naddress = \"127.0.0.1:1\"\n[qmqp]\nservers = [\"127.0.0.1:1\"]\n", "relay.local_domains is required"},
        Bad{"NoServers", "[[listener]]\naddress = \"127.0.0.1:1\"\n[relay]\nlocal_domains = [\"a.b\"]\n", "qmqp.servers is required"},
        Bad{"BadDomain", kMinimal + "[relay]\n", "t.toml:"},
        Bad{"BadProfile", "[[listener]]\naddress = \"127.0.0.1:1\"\nprofile = \"nope\"\n", "t.toml:3: listener.profile"},
        Bad{"TomlSyntax", "[[listener]\naddress = 1\n", "t.toml:1:"},
        Bad{"ListenerWithoutAddress", "[[listener]]\nprofile = \"mx\"\n", "needs an address"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Config, ProfilesHaveDefaultsAndOverrides) {
  auto r = load_string(kMinimal + "[profile.mx]\nrecipients = 5\nfilters = [\"relay_control\"]\n", "t.toml",
                       filters::config_schema());
  ASSERT_TRUE(r.config) << r.error;
  const auto& mx = r.config->profile("mx");
  EXPECT_EQ(mx.recipients, 5u);
  EXPECT_EQ(mx.filters, std::vector<std::string>{"relay_control"});
  EXPECT_FALSE(mx.auth);
  const auto& sub = r.config->profile("submission");
  EXPECT_TRUE(sub.auth_required);
  EXPECT_FALSE(sub.implicit_tls);
  EXPECT_TRUE(r.config->profile("submissions").implicit_tls);
}

INSTANTIATE_TEST_SUITE_P(
    Profiles, BadConfig,
    ::testing::Values(
        Bad{"UnknownProfile", kMinimal + "[profile.smtp]\nrecipients = 1\n", "t.toml:7: unknown profile 'smtp'"},
        Bad{"UnknownProfileKey", kMinimal + "[profile.mx]\nauth = true\n", "t.toml:8: unknown key 'auth' in [profile.mx]"},
        Bad{"UnknownFilter", kMinimal + "[profile.mx]\nfilters = [\"spamassassin\"]\n", "unknown filter 'spamassassin' (known: relay_control, rules, rbl, clamav, ocr, spf, dkim, dmarc, rspamd, ratelimit, greylist)"},
        // A chain without relay_control accepts no recipient at all: a config error, not 554 for everyone.
        Bad{"MxWithoutRelayControl", kMinimal + "[profile.mx]\nfilters = [\"rules\"]\n",
            "t.toml:8: profile.mx.filters: no filter accepts recipients (relay_control)"},
        // dmarc reads the spf filter's result: spf must come first in the chain.
        Bad{"DmarcWithoutSpf", kMinimal + "[profile.mx]\nfilters = [\"relay_control\", \"dkim\", \"dmarc\"]\n",
            "profile.mx.filters lists dmarc without spf before it"},
        Bad{"DmarcBeforeSpf", kMinimal + "[profile.mx]\nfilters = [\"dmarc\", \"spf\", \"relay_control\"]\n",
            "profile.mx.filters lists dmarc without spf before it"},
        Bad{"DmarcWithoutDkim", kMinimal + "[profile.mx]\nfilters = [\"spf\", \"dmarc\", \"relay_control\"]\n",
            "profile.mx.filters lists dmarc without dkim before it"},
        // spf, greylist and ratelimit judge recipients: after relay_control (whose Accept ends the rcpt
        // phase) they would never see one.
        Bad{"SpfAfterRelayControl", kMinimal + "[profile.mx]\nfilters = [\"relay_control\", \"spf\"]\n",
            "t.toml:8: profile.mx.filters: spf must come before relay_control"},
        Bad{"GreylistAfterRelayControl", kMinimal + "[profile.mx]\nfilters = [\"rbl\", \"relay_control\", \"greylist\"]\n",
            "t.toml:8: profile.mx.filters: greylist must come before relay_control"},
        Bad{"DmarcBadTemperrorPolicy", kMinimal + "[dmarc]\non_temperror = \"reject\"\n", "dmarc.on_temperror: expected one of"},
        Bad{"DmarcBadForwarder", kMinimal + "[dmarc]\ntrusted_forwarders = [\"10.0.0.1/8\"]\n", "has host bits set"},
        Bad{"MxWithEmptyChain", kMinimal + "[profile.mx]\nfilters = []\n", "t.toml:8: profile.mx.filters: no filter accepts"},
        Bad{"SubmissionWithoutRelayControl", kMinimal + "\n[profile.submission]\nfilters = [\"rbl\", \"clamav\"]\n",
            "t.toml:9: profile.submission.filters: no filter accepts recipients"},
        Bad{"SubmissionWithoutTls", kMinimal + "[[listener]]\naddress = \"127.0.0.1:587\"\nprofile = \"submission\"\n",
            "needs [tls] cert_file and key_file"},
        Bad{"CertWithoutKey", kMinimal + "[tls]\ncert_file = \"/nonexistent.pem\"\n", "tls needs both cert_file and key_file"},
        Bad{"BadTlsVersion", kMinimal + "[tls]\nmin_version = \"1.0\"\n", "tls.min_version"},
        Bad{"LdapWithoutUris", kMinimal + "[directory]\ntype = \"ldap\"\n", "needs directory.uris and directory.base_dn"},
        Bad{"BadLdapUri", kMinimal + "[directory]\nuris = [\"http://x\"]\n", "not an ldap://"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Config, ProxyListener) {
  auto r = load_string(kMinimal + "[[listener]]\naddress = \"127.0.0.1:2526\"\nproxy_protocol = true\n"
                                  "proxy_trusted = [\"10.0.0.0/8\", \"::1\"]\n", "t.toml", filters::config_schema());
  ASSERT_TRUE(r.config) << r.error;
  const auto& l = r.config->listeners.at(1);
  EXPECT_TRUE(l.proxy_protocol);
  ASSERT_EQ(l.proxy_trusted.size(), 2u);
  EXPECT_TRUE(l.proxy_trusted[0].contains(core::IpAddress::v4({10, 1, 2, 3})));
  EXPECT_TRUE(l.proxy_trusted[1].contains(*core::IpAddress::parse("::1")));
  EXPECT_FALSE(r.config->listeners.at(0).proxy_protocol);
}

INSTANTIATE_TEST_SUITE_P(
    Proxy, BadConfig,
    ::testing::Values(
        Bad{"ProxyWithoutTrusted", kMinimal + "[[listener]]\naddress = \"127.0.0.1:2526\"\nproxy_protocol = true\n",
            "needs proxy_trusted"},
        Bad{"BadCidr", kMinimal + "[[listener]]\naddress = \"127.0.0.1:2526\"\nproxy_trusted = [\"10.0.0.0/33\"]\n",
            "t.toml:9: listener.proxy_trusted: '10.0.0.0/33' is not an address or CIDR range"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Config, DocTableHasEveryParameterWithItsDefault) {
  std::string doc = config::markdown_table(filters::config_schema());
  for (const auto& p : filters::config_schema().rows) {
    EXPECT_NE(doc.find(std::string(p.key)), std::string::npos) << p.key;
    EXPECT_FALSE(p.doc.empty()) << p.key;
  }
  EXPECT_NE(doc.find("| `limits.line_length` | integer | 512 |"), std::string::npos);
}

TEST(Config, MissingFileIsAnError) {
  auto r = config::load("/nonexistent/mxfront.toml", config::core_schema());
  EXPECT_FALSE(r.config);
  EXPECT_NE(r.error.find("/nonexistent/mxfront.toml:0: cannot read"), std::string::npos);
}

}  // namespace
