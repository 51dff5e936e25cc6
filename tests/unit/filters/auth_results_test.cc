// filters/auth_results.h: which client-sent Authentication-Results fields carry our authserv-id
// (every RFC 8601 form of it: CFWS, nested comments, folding, quoted-string, version, any case;
// never a longer or different id), the removal of such fields from a message, and the one
// authserv-id of the config (server.authserv_id, its aliases, the hostname default, conflicts).
#include "filters/auth_results.h"

#include <gtest/gtest.h>

#include "config/load.h"
#include "filters/owned_headers.h"
#include "filters/registry/registry.h"

namespace {

using filters::carries_authserv_id;

bool ours(std::string_view value) { return carries_authserv_id(value, "mx.test"); }

TEST(AuthservId, PlainTokenWithOrWithoutVersionInAnyCase) {
  EXPECT_TRUE(ours("mx.test; spf=pass"));
  EXPECT_TRUE(ours("mx.test;spf=pass"));
  EXPECT_TRUE(ours("MX.Test; dmarc=pass"));
  EXPECT_TRUE(ours("mx.test 1; dmarc=pass"));
  EXPECT_TRUE(ours("mx.test 1 ; dmarc=pass"));
  EXPECT_TRUE(ours("mx.test; none"));
  EXPECT_TRUE(ours("mx.test"));  // nothing after it
  EXPECT_TRUE(ours(" \t mx.test ; spf=pass"));
}

TEST(AuthservId, AfterOrAroundComments) {
  EXPECT_TRUE(ours("(c) mx.test; spf=pass"));
  EXPECT_TRUE(ours("(x)mx.test; dmarc=pass"));
  EXPECT_TRUE(ours("(a (nested (twice)) comment) mx.test; spf=pass"));
  EXPECT_TRUE(ours("(a \\) escaped paren) mx.test; spf=pass"));
  EXPECT_TRUE(ours("(one) (two)\t(three) mx.test; spf=pass"));
  EXPECT_TRUE(ours("mx.test(c); spf=pass"));
  EXPECT_TRUE(ours("mx.test (c) 1 (d); spf=pass"));
  EXPECT_TRUE(ours("(other.test) mx.test; spf=pass"));
  EXPECT_FALSE(ours("(mx.test) other.test; spf=pass"));  // our id in a comment only
  EXPECT_FALSE(ours("(a (mx.test) b) other.test; spf=pass"));
}

TEST(AuthservId, FoldedAcrossLines) {
  EXPECT_TRUE(ours("\r\n mx.test;\r\n spf=pass"));
  EXPECT_TRUE(ours("(folded\r\n comment)\r\n\tmx.test; spf=pass"));
  EXPECT_TRUE(ours("\n\tmx.test\n 1;\n dkim=pass"));
}

TEST(AuthservId, QuotedString) {
  EXPECT_TRUE(ours("\"mx.test\"; dmarc=pass"));
  EXPECT_TRUE(ours("\"MX.TEST\" 1; spf=pass"));
  EXPECT_TRUE(ours("(c) \"mx.test\"; spf=pass"));
  EXPECT_TRUE(ours("\"mx\\.test\"; spf=pass"));    // quoted-pairs undone
  EXPECT_TRUE(ours("\"\\m\\x\\.\\t\\e\\s\\t\"; spf=pass"));
  EXPECT_TRUE(ours("\"mx.test\r\n \"; spf=pass"));  // folded inside, at its end
  EXPECT_FALSE(ours("\"mx.\r\n test\"; spf=pass"));  // unfolded: "mx. test"
  EXPECT_TRUE(ours("\" mx.test \"; spf=pass"));      // white space at its ends
  EXPECT_TRUE(ours("\"mx.test\"1; spf=pass"));
  EXPECT_FALSE(ours("\"mx.test.evil.example\"; spf=pass"));
  EXPECT_FALSE(ours("\"notmx.test\"; spf=pass"));
  EXPECT_FALSE(ours("\"mx test\"; spf=pass"));
  EXPECT_FALSE(ours("\"\"; spf=pass"));
}

TEST(AuthservId, OtherIdsAreNotOurs) {
  EXPECT_FALSE(ours("mx.test.evil.example; dmarc=pass"));
  EXPECT_FALSE(ours("notmx.test; spf=pass"));
  EXPECT_FALSE(ours("mx.tes; spf=pass"));
  EXPECT_FALSE(ours("x.test; spf=pass smtp.mailfrom=a@mx.test"));
  EXPECT_FALSE(ours("other.test; dmarc=pass header.from=mx.test"));
  EXPECT_FALSE(ours("mx.test.; spf=pass"));
  EXPECT_FALSE(ours("mx.test/1; spf=pass"));
  EXPECT_FALSE(ours("mx.test@x; spf=pass"));
  EXPECT_FALSE(ours("other.test mx.test; spf=pass"));  // the second word is no authserv-id
}

// A field whose authserv-id cannot be read is removed as well: another reader may find ours in it.
TEST(AuthservId, UnreadableIdCountsAsOurs) {
  EXPECT_TRUE(ours("((x) mx.test; dmarc=pass"));  // unterminated comment (a non-nesting reader sees mx.test)
  EXPECT_TRUE(ours("(x mx.test; dmarc=pass"));
  EXPECT_TRUE(ours("\"mx.test; dmarc=pass"));     // unterminated quoted-string
  EXPECT_TRUE(ours("; dmarc=pass"));
  EXPECT_TRUE(ours(""));
  EXPECT_TRUE(ours(" (only a comment) "));
  EXPECT_TRUE(ours("\"mx.test\\"));
}

TEST(AuthservId, ForgedFieldsAreRemovedFromTheMessageOthersKept) {
  std::vector<filters::OwnedHeader> owned = {
      {"Authentication-Results", [](std::string_view v) { return carries_authserv_id(v, "mx.test"); }}};
  std::string m =
      "Authentication-Results: (x) mx.test; dmarc=pass\n"
      "Authentication-Results: \"mx.test\"; spf=pass\n"
      "Authentication-Results: (folded\n comment) MX.TEST 1;\n dkim=pass\n"
      "Authentication-Results: mx.test.evil.example; dmarc=pass\n"
      "Authentication-Results: notmx.test; spf=pass\n"
      "Subject: s\n\nAuthentication-Results: mx.test; spf=pass\n";
  std::string out;
  EXPECT_EQ(filters::strip_owned_headers(m, owned, out), 3u);
  EXPECT_EQ(out,
            "Authentication-Results: mx.test.evil.example; dmarc=pass\n"
            "Authentication-Results: notmx.test; spf=pass\n"
            "Subject: s\n\nAuthentication-Results: mx.test; spf=pass\n");
}

// ---- the one authserv-id of the config ----

const std::string kMinimal =
    "[[listener]]\naddress = \"127.0.0.1:2525\"\n"
    "[relay]\nlocal_domains = [\"example.org\"]\n"
    "[qmqp]\nservers = [\"127.0.0.1:628\"]\n";

config::LoadResult load(const std::string& extra) { return config::load_string(kMinimal + extra, "t.toml", filters::config_schema()); }

TEST(AuthservIdConfig, DefaultIsTheHostname) {
  auto r = load("[server]\nhostname = \"mx.example.org\"\n");
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(filters::authserv_id(*r.config), "mx.example.org");
}

TEST(AuthservIdConfig, ServerKeyOrOneAliasSetsItForAll) {
  auto r = load("[server]\nhostname = \"mx.example.org\"\nauthserv_id = \"auth.example.org\"\n");
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(filters::authserv_id(*r.config), "auth.example.org");
  for (const char* section : {"spf", "dkim", "dmarc"}) {
    auto a = load(std::string("[") + section + "]\nauthserv_id = \"alias.example.org\"\n");
    ASSERT_TRUE(a.config) << a.error;
    EXPECT_EQ(filters::authserv_id(*a.config), "alias.example.org") << section;
  }
  auto same = load("[server]\nauthserv_id = \"a.example.org\"\n[spf]\nauthserv_id = \"a.example.org\"\n"
                   "[dmarc]\nauthserv_id = \"a.example.org\"\n");
  ASSERT_TRUE(same.config) << same.error;
  EXPECT_EQ(filters::authserv_id(*same.config), "a.example.org");
}

TEST(AuthservIdConfig, DifferentValuesAreAConfigError) {
  // kMinimal has 6 lines: [server] is line 7, its authserv_id line 8, [spf] line 9, its key line 10
  auto r = load("[server]\nauthserv_id = \"a.example.org\"\n[spf]\nauthserv_id = \"b.example.org\"\n");
  ASSERT_FALSE(r.config);
  EXPECT_NE(r.error.find("t.toml:10: spf.authserv_id: \"b.example.org\" differs from \"a.example.org\""), std::string::npos)
      << r.error;
  auto r2 = load("[dkim]\nauthserv_id = \"a.example.org\"\n[dmarc]\nauthserv_id = \"A.example.org\"\n");
  ASSERT_FALSE(r2.config);
  EXPECT_NE(r2.error.find("t.toml:10: dmarc.authserv_id: "), std::string::npos) << r2.error;
}

TEST(AuthservIdConfig, OnlyATokenIsAccepted) {
  for (const char* bad : {"\"\"", "\"mx test\"", "\"mx.test;x\"", "\"mx\\ntest\"", "\"(mx)\"", "\"a@b\"", "\"\\\"q\\\"\"", "1"}) {
    auto r = load(std::string("[server]\nauthserv_id = ") + bad + "\n");
    EXPECT_FALSE(r.config) << bad;
    EXPECT_NE(r.error.find("t.toml:8: server.authserv_id: expected an authserv-id"), std::string::npos) << r.error;
  }
}

}  // namespace
