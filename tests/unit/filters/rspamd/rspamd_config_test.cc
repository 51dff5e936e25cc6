// The [rspamd] section as the loader reads it: rspamd.profile_score gives a profile its own score
// mode; an entry naming no profile or no mode is refused at its own file:line.
#include "config/load.h"
#include "filters/registry/registry.h"
#include "filters/rspamd/descriptor.h"

#include <gtest/gtest.h>

namespace filters::rspamd {
namespace {

const std::string kBase =
    "[[listener]]\naddress = \"127.0.0.1:2525\"\n"
    "[relay]\nlocal_domains = [\"example.org\"]\n"
    "[qmqp]\nservers = [\"127.0.0.1:628\"]\n"
    "[profile.mx]\nfilters = [\"relay_control\", \"rspamd\"]\n"
    "[rspamd]\nservers = [\"127.0.0.1:11333\"]\n";  // lines 9-10: what follows starts at line 11

config::LoadResult load(const std::string& rspamd_keys) {
  return config::load_string(kBase + rspamd_keys, "t.toml", config_schema());
}

TEST(RspamdProfileScore, EachProfileGetsItsEntryElseRspamdScore) {
  auto r = load("score = \"add\"\nprofile_score = [\"submission=alone\", \"submissions=alone\"]\n");
  ASSERT_TRUE(r.config) << r.error;
  const auto& s = r.config->sections.get<Settings>("rspamd");
  EXPECT_EQ(score_mode_for(s, "mx"), ScoreMode::Add);
  EXPECT_EQ(score_mode_for(s, "submission"), ScoreMode::Alone);
  EXPECT_EQ(score_mode_for(s, "submissions"), ScoreMode::Alone);

  auto alone = load("score = \"alone\"\nprofile_score = [\"mx=add\"]\n");
  ASSERT_TRUE(alone.config) << alone.error;
  const auto& a = alone.config->sections.get<Settings>("rspamd");
  EXPECT_EQ(score_mode_for(a, "mx"), ScoreMode::Add);
  EXPECT_EQ(score_mode_for(a, "submission"), ScoreMode::Alone);
  EXPECT_EQ(score_mode_for(a, ""), ScoreMode::Alone);  // outside a profile: rspamd.score

  auto none = load("");
  ASSERT_TRUE(none.config) << none.error;
  EXPECT_EQ(score_mode_for(none.config->sections.get<Settings>("rspamd"), "mx"), ScoreMode::Add);  // the default
}

TEST(RspamdProfileScore, AnUnknownProfileOrModeIsAnErrorAtItsLine) {
  struct Case {
    const char* keys;
    const char* error;
  } cases[] = {
      {"profile_score = [\"relay=alone\"]\n", "t.toml:11: rspamd.profile_score: \"relay=alone\": no profile named \"relay\""},
      {"profile_score = [\"mx=alone\", \"submission=solo\"]\n",
       "t.toml:11: rspamd.profile_score: \"submission=solo\": the mode is \"add\" or \"alone\""},
      {"profile_score = [\"alone\"]\n", "t.toml:11: rspamd.profile_score: \"alone\" is not \"profile=add\" or \"profile=alone\""},
      {"profile_score = [\"mx=\"]\n", "t.toml:11: rspamd.profile_score: \"mx=\": the mode is \"add\" or \"alone\""},
      {"profile_score = \"mx=alone\"\n", "t.toml:11: rspamd.profile_score: expected a list of strings"},
  };
  for (const auto& c : cases) {
    auto r = load(c.keys);
    EXPECT_FALSE(r.config) << c.keys;
    EXPECT_EQ(r.error, c.error) << c.keys;
  }
}

}  // namespace
}  // namespace filters::rspamd
