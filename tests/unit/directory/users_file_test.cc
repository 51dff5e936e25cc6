// Unit tests for the users file directory: every hash scheme (made here with crypt_r and OpenSSL,
// as slappasswd/mkpasswd would), recipients (primary, alternates, case, disabled, catch-all), AUTH
// (right and wrong passwords, unknown users, `-`, empty password, disabled accounts) and every
// parse error with its path:line.
#include "directory/users_file.h"

#include <crypt.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "directory/factory.h"

namespace ldap {
namespace {

namespace asio = boost::asio;

// ---- hashes, made independently of the code under test --------------------------------------

std::string b64(const std::string& raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string ssha(const std::string& pw, const std::string& salt = "s4lt") {
  std::string in = pw + salt;
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), d);
  return "{SSHA}" + b64(std::string(reinterpret_cast<char*>(d), sizeof d) + salt);
}

std::string ssha512(const std::string& pw, const std::string& salt = "pepper!!") {
  std::string in = pw + salt;
  unsigned char d[SHA512_DIGEST_LENGTH];
  SHA512(reinterpret_cast<const unsigned char*>(in.data()), in.size(), d);
  return "{SSHA512}" + b64(std::string(reinterpret_cast<char*>(d), sizeof d) + salt);
}

std::string crypt_hash(const std::string& pw, const char* prefix) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn(prefix, 0, nullptr, 0, setting, sizeof setting)) return "gensalt-failed";
  crypt_data data{};
  const char* out = crypt_r(pw.c_str(), setting, &data);
  return out ? out : "crypt-failed";
}

// ---- running the coroutines ---------------------------------------------------------------

template <class T>
T run(asio::awaitable<T> a) {
  asio::io_context io;
  std::optional<T> out;
  asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out = std::move(v);
  });
  io.run();
  return std::move(*out);
}

config::Directory file_options() {
  config::Directory o;
  o.type = "file";
  o.catchall_domains = {"Catchall.Example"};
  return o;
}

class UsersFile : public ::testing::Test {
 protected:
  void SetUp() override {
    text_ = "# test users\n"
            "\n"
            "alice@example.org  " + ssha("alicepw") + "  active  alias-alice@example.org,Alice.Smith@Example.ORG\n"
            "bob@example.org\t" + crypt_hash("bobpw", "$6$") + "\r\n"
            "   carol@example.org " + crypt_hash("carolpw", "$5$") + " disabled   # left the company\n"
            "dave@example.org " + crypt_hash("davepw", "$y$") + " ACTIVE\n"
            "erin@example.org {CRYPT}" + crypt_hash("erinpw", "$6$") + "\n"
            "frank@example.org " + ssha512("frankpw") + " active\n"
            "postmaster@example.org - active abuse@example.org\n"
            "gone@example.org " + ssha("gonepw") + " deleted\n";
    auto parsed = parse_users(text_, "users.txt", file_options());
    ASSERT_TRUE(parsed.table) << parsed.error;
    dir_ = std::make_shared<UsersFileDirectory>(std::move(*parsed.table), "users.txt", file_options(), pool_);
  }

  RecipientResult rcpt(const std::string& a) { return run(dir_->find_recipient(a)); }
  AuthResult auth(const std::string& u, const std::string& p) { return run(dir_->authenticate(u, p)); }

  std::string text_;
  std::shared_ptr<net::BlockingPool> pool_ = std::make_shared<net::BlockingPool>("users", 2, 64);
  std::shared_ptr<UsersFileDirectory> dir_;
};

TEST_F(UsersFile, PrimaryAddressIsFound) {
  auto r = rcpt("alice@example.org");
  EXPECT_EQ(r.status, Lookup::Found);
  EXPECT_EQ(r.mailbox, "alice@example.org");
  EXPECT_EQ(dir_->users(), 8u);
}

TEST_F(UsersFile, AlternateAddressDeliversToThePrimary) {
  auto r = rcpt("alias-alice@example.org");
  EXPECT_EQ(r.status, Lookup::Found);
  EXPECT_EQ(r.mailbox, "alice@example.org");
  EXPECT_EQ(rcpt("abuse@example.org").mailbox, "postmaster@example.org");
}

TEST_F(UsersFile, MatchingIgnoresCase) {
  EXPECT_EQ(rcpt("ALICE@Example.Org").status, Lookup::Found);
  EXPECT_EQ(rcpt("alice.smith@example.org").mailbox, "alice@example.org");  // written mixed-case in the file
  EXPECT_EQ(rcpt("Bob@EXAMPLE.ORG").mailbox, "bob@example.org");
}

TEST_F(UsersFile, UnknownIsNotFound) {
  EXPECT_EQ(rcpt("nobody@example.org").status, Lookup::NotFound);
  EXPECT_EQ(rcpt("alice@example.net").status, Lookup::NotFound);
  EXPECT_EQ(rcpt("alice").status, Lookup::NotFound);
  EXPECT_EQ(rcpt("").status, Lookup::NotFound);
}

TEST_F(UsersFile, DisabledStatusesAreNotDeliverable) {
  EXPECT_EQ(rcpt("carol@example.org").status, Lookup::Disabled);
  EXPECT_EQ(rcpt("gone@example.org").status, Lookup::Disabled);
  EXPECT_EQ(rcpt("dave@example.org").status, Lookup::Found);  // "ACTIVE": case-insensitive
}

TEST_F(UsersFile, CatchAllDomainAcceptsUnknownLocalParts) {
  auto r = rcpt("Anything@CATCHALL.example");
  EXPECT_EQ(r.status, Lookup::Found);
  EXPECT_EQ(r.mailbox, "anything@catchall.example");
  EXPECT_EQ(rcpt("anything@sub.catchall.example").status, Lookup::NotFound);  // the exact domain only
}

TEST_F(UsersFile, CatchAllDoesNotReviveADisabledAccount) {
  auto parsed = parse_users("x@catchall.example - disabled\n", "u", file_options());
  ASSERT_TRUE(parsed.table);
  UsersFileDirectory d(std::move(*parsed.table), "u", file_options(), pool_);
  EXPECT_EQ(run(d.find_recipient("x@catchall.example")).status, Lookup::Disabled);
  EXPECT_EQ(run(d.find_recipient("y@catchall.example")).status, Lookup::Found);
}

TEST_F(UsersFile, AuthWithEachHashScheme) {
  EXPECT_EQ(auth("alice@example.org", "alicepw").status, AuthStatus::Ok);  // {SSHA}
  EXPECT_EQ(auth("bob@example.org", "bobpw").status, AuthStatus::Ok);      // $6$
  EXPECT_EQ(auth("dave@example.org", "davepw").status, AuthStatus::Ok);    // $y$
  EXPECT_EQ(auth("erin@example.org", "erinpw").status, AuthStatus::Ok);    // {CRYPT}$6$
  EXPECT_EQ(auth("frank@example.org", "frankpw").status, AuthStatus::Ok);  // {SSHA512}
}

TEST_F(UsersFile, AuthReturnsEveryAddressLowerCase) {
  auto r = auth("alice@example.org", "alicepw");
  ASSERT_EQ(r.status, AuthStatus::Ok);
  EXPECT_EQ(r.addresses,
            (std::vector<std::string>{"alice@example.org", "alias-alice@example.org", "alice.smith@example.org"}));
}

TEST_F(UsersFile, AuthLoginIsAnyAddressInAnyCase) {
  EXPECT_EQ(auth("ALIAS-ALICE@example.org", "alicepw").status, AuthStatus::Ok);
  EXPECT_EQ(auth("Alice@Example.org", "alicepw").status, AuthStatus::Ok);
  EXPECT_EQ(auth("BOB@example.org", "BOBPW").status, AuthStatus::BadCredentials);  // passwords are exact
}

TEST_F(UsersFile, WrongPasswordIsBadCredentials) {
  for (const char* user : {"alice@example.org", "bob@example.org", "dave@example.org", "frank@example.org"}) {
    auto r = auth(user, "wrong");
    EXPECT_EQ(r.status, AuthStatus::BadCredentials) << user;
    EXPECT_TRUE(r.addresses.empty());
  }
  EXPECT_EQ(auth("alice@example.org", "alicepw ").status, AuthStatus::BadCredentials);
  EXPECT_EQ(auth("alice@example.org", "alicep").status, AuthStatus::BadCredentials);
}

TEST_F(UsersFile, UnknownUserGetsTheSameAnswerAsAWrongPassword) {
  auto r = auth("nobody@example.org", "whatever");
  EXPECT_EQ(r.status, AuthStatus::BadCredentials);
  EXPECT_EQ(auth("alice", "alicepw").status, AuthStatus::BadCredentials);  // no bare local parts
}

TEST_F(UsersFile, DashHashNeverLogsIn) {
  EXPECT_EQ(auth("postmaster@example.org", "-").status, AuthStatus::BadCredentials);
  EXPECT_EQ(auth("postmaster@example.org", "anything").status, AuthStatus::BadCredentials);
  EXPECT_EQ(rcpt("postmaster@example.org").status, Lookup::Found);  // still a recipient
}

TEST_F(UsersFile, EmptyPasswordIsRefused) {
  EXPECT_EQ(auth("alice@example.org", "").status, AuthStatus::BadCredentials);
  EXPECT_EQ(auth("alice@example.org", std::string("alicepw\0x", 9)).status, AuthStatus::BadCredentials);
}

TEST_F(UsersFile, DisabledAccountAnswersDisabledOnlyToTheRightPassword) {
  EXPECT_EQ(auth("carol@example.org", "carolpw").status, AuthStatus::Disabled);
  EXPECT_EQ(auth("carol@example.org", "wrong").status, AuthStatus::BadCredentials);
  EXPECT_EQ(auth("gone@example.org", "gonepw").status, AuthStatus::Disabled);
}

TEST_F(UsersFile, PasswordChecksRunOnThePool) {
  auto before = pool_->stats().completed;
  auth("bob@example.org", "bobpw");
  auth("nobody@example.org", "x");  // unknown users pay for a check too (timing)
  EXPECT_EQ(pool_->stats().completed, before + 2);
}

TEST(UsersFileDirectory, AFullPoolIsUnavailable) {
  auto parsed = parse_users("a@example.org " + ssha("pw") + "\n", "u", file_options());
  ASSERT_TRUE(parsed.table);
  UsersFileDirectory d(std::move(*parsed.table), "u", file_options(), std::make_shared<net::BlockingPool>("u", 1, 0));
  EXPECT_EQ(run(d.authenticate("a@example.org", "pw")).status, AuthStatus::Unavailable);
  EXPECT_EQ(run(d.find_recipient("a@example.org")).status, Lookup::Found);  // lookups need no pool
}

// ---- password hashes on their own --------------------------------------------------------------

TEST(PasswordHash, SshaWithAnySaltLength) {
  for (std::string salt : {"x", "1234", "a much longer salt value"}) {
    std::string err;
    auto h = parse_password_hash(ssha("pw", salt), err);
    ASSERT_TRUE(h) << err;
    EXPECT_TRUE(verify_password(*h, "pw"));
    EXPECT_FALSE(verify_password(*h, "pw2"));
  }
}

TEST(PasswordHash, SchemeNamesIgnoreCase) {
  std::string err;
  std::string h = ssha("pw");
  h.replace(0, 6, "{ssha}");
  auto parsed = parse_password_hash(h, err);
  ASSERT_TRUE(parsed) << err;
  EXPECT_TRUE(verify_password(*parsed, "pw"));
}

// ---- parse errors ---------------------------------------------------------------------------

std::string error_of(const std::string& text) {
  auto r = parse_users(text, "/etc/mxfront/users", file_options());
  EXPECT_FALSE(r.table) << text;
  return r.error;
}

TEST(UsersFileErrors, NameThePathAndTheLine) {
  std::string ok = "a@example.org -\n";
  EXPECT_EQ(error_of(ok + "# comment\nb@example.org\n"),
            "/etc/mxfront/users:3: expected: address password-hash [status [alternate,addresses,...]]");
  EXPECT_EQ(error_of(ok + "b@example.org - active x@example.org extra\n"),
            "/etc/mxfront/users:2: too many fields: expected address password-hash [status [alternate,addresses,...]]");
  EXPECT_EQ(error_of("no-at-sign -\n"), "/etc/mxfront/users:1: 'no-at-sign' is not an address (local@domain)");
  EXPECT_EQ(error_of("@example.org -\n"), "/etc/mxfront/users:1: '@example.org' is not an address (local@domain)");
  EXPECT_EQ(error_of("a@ -\n"), "/etc/mxfront/users:1: 'a@' is not an address (local@domain)");
}

TEST(UsersFileErrors, BadHashes) {
  EXPECT_EQ(error_of("a@example.org secret\n"),
            "/etc/mxfront/users:1: unknown password hash (expected {SSHA}, {SSHA512}, {CRYPT}, a crypt(3) $id$ "
            "string or -)");
  EXPECT_EQ(error_of("a@example.org {SSHA}not*base64!\n"),
            "/etc/mxfront/users:1: {SSHA} value is not base64 of a 20-byte digest followed by a salt");
  EXPECT_EQ(error_of("a@example.org {SSHA}" + b64(std::string(20, 'x')) + "\n"),  // no salt
            "/etc/mxfront/users:1: {SSHA} value is not base64 of a 20-byte digest followed by a salt");
  EXPECT_EQ(error_of("a@example.org {SSHA512}" + b64(std::string(40, 'x')) + "\n"),
            "/etc/mxfront/users:1: {SSHA512} value is not base64 of a 64-byte digest followed by a salt");
  EXPECT_NE(error_of("a@example.org $9$nosuchmethod$abc\n").find(":1: '$9$n' is not a crypt(3) hash"),
            std::string::npos);
  EXPECT_NE(error_of("a@example.org {CRYPT}plain\n").find(":1: 'plai' is not a crypt(3) hash"), std::string::npos);
}

TEST(UsersFileErrors, UnknownStatusListsTheAcceptedOnes) {
  EXPECT_EQ(error_of("a@example.org - suspended\n"),
            "/etc/mxfront/users:1: unknown status 'suspended' (expected active or one of: disabled, deleted, noaccess)");
}

TEST(UsersFileErrors, BadAlternates) {
  EXPECT_EQ(error_of("a@example.org - active b@example.org,,c@example.org\n"),
            "/etc/mxfront/users:1: '' is not an alternate address (local@domain)");
  EXPECT_EQ(error_of("a@example.org - active b@example.org,\n"),
            "/etc/mxfront/users:1: '' is not an alternate address (local@domain)");
  EXPECT_EQ(error_of("a@example.org - active nodomain\n"),
            "/etc/mxfront/users:1: 'nodomain' is not an alternate address (local@domain)");
}

TEST(UsersFileErrors, EveryAddressIsUnique) {
  EXPECT_EQ(error_of("a@example.org -\nb@example.org - active x@example.org\nA@Example.org -\n"),
            "/etc/mxfront/users:3: address a@example.org is already used on line 1");
  EXPECT_EQ(error_of("a@example.org -\nb@example.org - active A@EXAMPLE.ORG\n"),
            "/etc/mxfront/users:2: address a@example.org is already used on line 1");
  EXPECT_EQ(error_of("a@example.org - active x@example.org,x@example.org\n"),
            "/etc/mxfront/users:1: address x@example.org is already used on line 1");
}

TEST(UsersFileErrors, CustomDisabledValuesAreAccepted) {
  config::Directory o = file_options();
  o.disabled_values = {"suspended"};
  EXPECT_TRUE(parse_users("a@example.org - suspended\n", "u", o).table);
  EXPECT_FALSE(parse_users("a@example.org - disabled\n", "u", o).table);
}

TEST(UsersFileErrors, EmptyFileIsValid) {
  auto r = parse_users("# nobody yet\n\n", "u", file_options());
  ASSERT_TRUE(r.table);
  EXPECT_TRUE(r.table->users.empty());
}

// ---- loading through the factory ---------------------------------------------------------------

TEST(UsersFileLoad, MissingFileIsAnError) {
  config::Directory o = file_options();
  o.users_file = "/nonexistent/mxfront-users";
  auto made = make_directory(o, nullptr);
  EXPECT_FALSE(made.dir);
  EXPECT_EQ(made.error, "/nonexistent/mxfront-users: cannot read: No such file or directory");
}

TEST(UsersFileLoad, LoadsAFileThroughTheFactory) {
  char path[] = "/tmp/mxfront-users-test.XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "alice@example.org " << ssha("alicepw") << " active alias@example.org\nbroken-line -\n";
  config::Directory o = file_options();
  o.users_file = path;
  auto bad = make_directory(o, nullptr);
  EXPECT_FALSE(bad.dir);
  EXPECT_EQ(bad.error, std::string(path) + ":2: 'broken-line' is not an address (local@domain)");

  std::ofstream(path) << "alice@example.org " << ssha("alicepw") << " active alias@example.org\n";
  auto made = make_directory(o, nullptr);
  ASSERT_TRUE(made.dir) << made.error;
  EXPECT_EQ(made.dir->describe(), std::string("users file ") + path);
  EXPECT_EQ(run(made.dir->find_recipient("alias@example.org")).mailbox, "alice@example.org");
  EXPECT_EQ(run(made.dir->authenticate("alias@example.org", "alicepw")).status, AuthStatus::Ok);
  std::remove(path);
}

}  // namespace
}  // namespace ldap

// ---- issue 12 item 6: timing must not tell which logins exist ---------------------------------
namespace ldap {
namespace {

double seconds_for(UsersFileDirectory& d, const std::string& user, const std::string& pw, int n = 5) {
  double best = 1e9;
  for (int i = 0; i < n; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    (void)run(d.authenticate(user, pw));
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

TEST(UsersFileTiming, CostClassIgnoresSaltAndDigest) {
  std::string err;
  auto h = [&](const std::string& f) { return *parse_password_hash(f, err); };
  EXPECT_EQ(cost_class(h(crypt_hash("x", "$6$"))), "$6$");
  EXPECT_EQ(cost_class(h(crypt_hash("x", "$5$"))), "$5$");
  EXPECT_EQ(cost_class(h("$6$rounds=9000$abcdefgh$" + std::string(86, 'a'))), "$6$rounds=9000$");
  EXPECT_EQ(cost_class(h(crypt_hash("x", "$2b$"))).substr(0, 4), "$2b$");
  EXPECT_EQ(cost_class(h(crypt_hash("x", "$2b$"))).back(), '$');
  EXPECT_EQ(cost_class(h(ssha("x"))), "{SSHA}");
}

// An {SSHA} user next to a bcrypt one: before, unknown logins cost one SHA-512-crypt and the
// {SSHA} user almost nothing (0.4 ms against 3.3 ms), so a stopwatch told who exists.
TEST(UsersFileTiming, UnknownAndFastHashUsersCostTheSlowestKind) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  ASSERT_TRUE(crypt_gensalt_rn("$2b$", 9, nullptr, 0, setting, sizeof setting));
  crypt_data data{};
  std::string bcrypt = crypt_r("carolpw", setting, &data);
  std::string text = "alice@example.org " + ssha("alicepw") + "\n" +
                     "bob@example.org " + crypt_hash("bobpw", "$6$") + "\n" +
                     "carol@example.org " + bcrypt + "\n" + "nologin@example.org -\n";
  auto parsed = parse_users(text, "u", file_options());
  ASSERT_TRUE(parsed.table) << parsed.error;
  auto pool = std::make_shared<net::BlockingPool>("users", 1, 8);
  UsersFileDirectory d(std::move(*parsed.table), "u", file_options(), pool);
  EXPECT_EQ(d.decoy().digest.substr(0, 4), "$2b$");
  // Interleaved rounds, the fastest of each: load on the machine only adds time, so the minima are
  // the costs. Before the decoy the ratios were ~0.0002 ({SSHA} vs bcrypt); 0.3 leaves room for noise.
  double known_bcrypt = 1e9, known_ssha = 1e9, unknown = 1e9, nologin = 1e9;
  for (int round = 0; round < 7; ++round) {
    known_bcrypt = std::min(known_bcrypt, seconds_for(d, "carol@example.org", "wrong", 1));
    known_ssha = std::min(known_ssha, seconds_for(d, "alice@example.org", "wrong", 1));
    unknown = std::min(unknown, seconds_for(d, "nobody@example.org", "wrong", 1));
    nologin = std::min(nologin, seconds_for(d, "nologin@example.org", "wrong", 1));
  }
  std::printf("verify: bcrypt user %.2f ms, {SSHA} user %.2f ms, unknown %.2f ms, '-' %.2f ms\n", known_bcrypt * 1e3,
              known_ssha * 1e3, unknown * 1e3, nologin * 1e3);
  EXPECT_GT(unknown, 0.3 * known_bcrypt);
  EXPECT_GT(nologin, 0.3 * known_bcrypt);
  EXPECT_GT(known_ssha, 0.3 * known_bcrypt);
  EXPECT_EQ(run(d.authenticate("alice@example.org", "alicepw")).status, AuthStatus::Ok);  // still verifies
  EXPECT_EQ(run(d.authenticate("nobody@example.org", "carolpw")).status, AuthStatus::BadCredentials);
}

}  // namespace
}  // namespace ldap
