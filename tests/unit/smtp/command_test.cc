// Command line recognition.
#include "smtp/command.h"

#include <gtest/gtest.h>

using namespace smtp;

TEST(Command, VerbsAreCaseInsensitive) {
  EXPECT_EQ(parse_command("ehlo x").verb, Verb::Ehlo);
  EXPECT_EQ(parse_command("Mail From:<a@b>").verb, Verb::Mail);
  EXPECT_EQ(parse_command("Mail From:<a@b>").arg, "<a@b>");
  EXPECT_EQ(parse_command("rcpt to: <a@b>").arg, " <a@b>");
}

TEST(Command, PrefixesAreNotVerbs) {
  EXPECT_EQ(parse_command("NOOPX").verb, Verb::Unknown);
  EXPECT_EQ(parse_command("DATAX").verb, Verb::Unknown);
  EXPECT_EQ(parse_command("").verb, Verb::Unknown);
}

TEST(Command, MailWithoutFromIsMailWithEmptyArgument) {
  Command c = parse_command("MAIL <a@b>");
  EXPECT_EQ(c.verb, Verb::Mail);
  EXPECT_TRUE(c.arg.empty());
}

TEST(Command, UnofferedExtensionsAreNotImplemented) {
  for (const char* l : {"BDAT 1 LAST", "EXPN list", "ETRN x", "TURN"})
    EXPECT_EQ(parse_command(l).verb, Verb::NotImplemented) << l;
}

TEST(Command, StartTlsAndAuth) {
  EXPECT_EQ(parse_command("starttls").verb, Verb::StartTls);
  Command c = parse_command("AUTH PLAIN AGFAYg==");
  EXPECT_EQ(c.verb, Verb::Auth);
  EXPECT_EQ(c.arg, "PLAIN AGFAYg==");
}
