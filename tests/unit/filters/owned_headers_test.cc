// filters::strip_owned_headers: client-supplied copies of the headers mxfront writes are removed
// from the top-level header block only (continuation lines included, names case-insensitive);
// attached messages and the body are untouched.
#include "filters/owned_headers.h"

#include <gtest/gtest.h>

using filters::OwnedHeader;
using filters::strip_owned_headers;

namespace {

const std::vector<OwnedHeader> kSpam = {{"X-Spam-Score", nullptr}, {"X-Spam-Status", nullptr}, {"X-Spam-Report", nullptr}};

std::string strip(std::string_view m, const std::vector<OwnedHeader>& owned = kSpam, size_t* n = nullptr) {
  std::string out;
  size_t removed = strip_owned_headers(m, owned, out);
  if (n) *n = removed;
  return removed ? out : std::string(m);
}

TEST(OwnedHeaders, ForgedSpamHeadersAreRemovedWithTheirContinuationLines) {
  size_t n = 0;
  std::string m =
      "X-Spam-Status: No, score=-50\n"
      "\ttag=5 reject=10\n"
      "Subject: hi\n"
      "x-spam-score : -50\n"  // any case, obsolete space before the colon
      "X-SPAM-REPORT: ALL_TRUSTED=-50\n"
      "From: a@example.net\n"
      "\n"
      "body\n";
  EXPECT_EQ(strip(m, kSpam, &n), "Subject: hi\nFrom: a@example.net\n\nbody\n");
  EXPECT_EQ(n, 3u);
}

TEST(OwnedHeaders, AMessageWithoutThemIsLeftAloneWithoutACopy) {
  std::string out = "untouched";
  EXPECT_EQ(strip_owned_headers("Subject: x\nX-Spam-Flag: YES\nX-Spam-Status-Extra: 1\n\nbody\n", kSpam, out), 0u);
  EXPECT_EQ(out, "untouched");
  EXPECT_EQ(strip_owned_headers("X-Spam-Status: No\n\n", {}, out), 0u);  // nothing owned
}

TEST(OwnedHeaders, TheBodyAndAttachedMessagesAreNotTouched) {
  std::string m =
      "Subject: fwd\n"
      "Content-Type: multipart/mixed; boundary=b\n"
      "\n"
      "X-Spam-Status: in the body\n"
      "--b\n"
      "Content-Type: message/rfc822\n"
      "\n"
      "X-Spam-Status: Yes, score=9 (the forwarded message's own)\n"
      "Subject: inner\n"
      "\n"
      "inner body\n"
      "--b--\n";
  EXPECT_EQ(strip(m), m);
}

TEST(OwnedHeaders, OnlyTheHeaderBlockEvenWhenTheMessageHasNoBodyOrNoHeaders) {
  EXPECT_EQ(strip("X-Spam-Score: 99"), "");  // no line end at all
  EXPECT_EQ(strip("Subject: a\nX-Spam-Score: 99\n"), "Subject: a\n");
  EXPECT_EQ(strip("\nX-Spam-Score: 99\n"), "\nX-Spam-Score: 99\n");  // starts with its body
  EXPECT_EQ(strip(" X-Spam-Score: 99\nSubject: a\n\n"), " X-Spam-Score: 99\nSubject: a\n\n");  // a stray continuation
  EXPECT_EQ(strip("Subject: a\n X-Spam-Score: 99\n\n"), "Subject: a\n X-Spam-Score: 99\n\n");  // part of Subject
  EXPECT_EQ(strip(""), "");
}

// The hook a later filter uses for Authentication-Results: only fields carrying our authserv-id.
TEST(OwnedHeaders, AValuePredicateSelectsWhichFieldsOfANameAreOurs) {
  std::vector<OwnedHeader> ar = {{"Authentication-Results", [](std::string_view v) {
                                    return v.starts_with("mx.example.org;") || v.starts_with("mx.example.org ");
                                  }}};
  std::string m =
      "Authentication-Results: mx.example.org;\n spf=pass smtp.mailfrom=evil.test\n"
      "Authentication-Results: upstream.example.net; dkim=pass\n"
      "Subject: s\n\nbody\n";
  EXPECT_EQ(strip(m, ar), "Authentication-Results: upstream.example.net; dkim=pass\nSubject: s\n\nbody\n");
}

// rspamd's milter remove_headers: {name: N}, N > 0 the N-th field of that name, N < 0 the |N|-th
// from the end, 0 every one; an occurrence past the last field removes nothing.
TEST(OwnedHeaders, AnOccurrenceIndexRemovesOnlyThatField) {
  std::string m =
      "X-Spam: first\n"
      "Subject: s\n"
      "x-spam: second\n\tfolded\n"
      "X-Spam: third\n"
      "\n"
      "X-Spam: in the body\n";
  auto only = [&](int occurrence) { return strip(m, {{"X-Spam", nullptr, occurrence}}); };
  EXPECT_EQ(only(1), "Subject: s\nx-spam: second\n\tfolded\nX-Spam: third\n\nX-Spam: in the body\n");
  EXPECT_EQ(only(2), "X-Spam: first\nSubject: s\nX-Spam: third\n\nX-Spam: in the body\n");
  EXPECT_EQ(only(-1), "X-Spam: first\nSubject: s\nx-spam: second\n\tfolded\n\nX-Spam: in the body\n");
  EXPECT_EQ(only(-3), only(1));
  EXPECT_EQ(only(0), "Subject: s\n\nX-Spam: in the body\n");
  size_t n = 9;
  EXPECT_EQ(strip(m, {{"X-Spam", nullptr, 4}}, &n), m);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(strip(m, {{"X-Spam", nullptr, -4}}), m);
  // two entries for the same name, and one that removes them all anyway: each field goes once
  EXPECT_EQ(strip(m, {{"X-Spam", nullptr, 1}, {"X-Spam", nullptr, -1}}, &n), "Subject: s\nx-spam: second\n\tfolded\n\nX-Spam: in the body\n");
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(strip(m, {{"X-Spam", nullptr, 2}, {"X-Spam", nullptr, 0}}, &n), only(0));
  EXPECT_EQ(n, 3u);
}

}  // namespace
