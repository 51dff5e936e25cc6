// The ClamAV engine and filter against a signature DB this test writes itself (harness style:
// EICAR as .hdb md5 and .ndb body signature, clam.exe as .hsb sha256): detection in memory and in
// MIME mail, clean mail, bad directories, limits, cancel, reload swaps, the pool path, and the engine
// kept across config generations (Resources).
#include "filters/clamav/clamav.h"
#include "filters/clamav/descriptor.h"
#include "filters/resources.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

using namespace filters;
using clamav::ScanResult;
namespace fs = std::filesystem;
using Kind = ScanResult::Kind;

namespace {
const char* kClamExe = "/usr/share/clamav-testfiles/clam.exe";

// Assembled from two halves so that this source file is not itself flagged by scanners.
std::string eicar() { return std::string("X5O!P%@AP[4\\PZX54(P^)7CC)7}$") + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"; }

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += {d[c >> 4], d[c & 15]};
  return out;
}

std::string digest(const EVP_MD* md, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  return hex(std::string(reinterpret_cast<char*>(out), len));
}

std::string slurp(const char* path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// base64 with 76-column lines, as a mail client writes an attachment.
std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t col = 0;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) n |= uint8_t(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= uint8_t(in[i + 2]);
    out += t[(n >> 18) & 63];
    out += t[(n >> 12) & 63];
    out += i + 1 < in.size() ? t[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? t[n & 63] : '=';
    if ((col += 4) == 76) out += '\n', col = 0;
  }
  return out + "\n";
}

std::string mime_with_attachment(const std::string& payload, const std::string& filename) {
  return "From: sender@example.net\nTo: bob@example.org\nSubject: attachment\nMIME-Version: 1.0\n"
         "Content-Type: multipart/mixed; boundary=\"XYZ\"\n\n--XYZ\nContent-Type: text/plain\n\nsee attachment\n"
         "--XYZ\nContent-Type: application/octet-stream; name=\"" + filename + "\"\n"
         "Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"" + filename + "\"\n\n" +
         base64(payload) + "--XYZ--\n";
}

// A temp dir holding the harness-style signature DB.
struct SigDir {
  fs::path dir;
  SigDir() {
    std::string t = (fs::temp_directory_path() / "clamav-test.XXXXXX").string();
    dir = mkdtemp(t.data());
    std::string e = eicar();
    write(dir / "harness.hdb", digest(EVP_md5(), e) + ":" + std::to_string(e.size()) + ":Harness.Test.EICAR.MD5\n");
    write(dir / "harness.ndb", "Harness.Test.EICAR.Body:0:*:" + hex(e) + "\n");
    std::string exe = slurp(kClamExe);
    if (!exe.empty())
      write(dir / "harness.hsb", digest(EVP_sha256(), exe) + ":" + std::to_string(exe.size()) + ":Harness.Test.ClamExe.SHA256\n");
  }
  ~SigDir() { fs::remove_all(dir); }
  void add_marker(const std::string& file, const std::string& name, const std::string& marker) {
    write(dir / (file + ".tmp"), name + ":0:*:" + hex(marker) + "\n");
    fs::rename(dir / (file + ".tmp"), dir / file);  // appears whole, as freshclam does it
  }
  clamav::Settings settings() const {
    clamav::Settings c;
    c.database_dir = dir.string();
    c.reload_check = config::Seconds(0.1);
    return c;
  }
};

std::shared_ptr<clamav::EngineHolder> make_holder(const clamav::Settings& c) {
  auto created = clamav::EngineHolder::create(c, {.disable_cache = true});
  EXPECT_TRUE(created.holder) << created.error;
  return created.holder;
}

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

const std::string kMarker = "MXFRONT-RELOAD-MARKER-7f3a9c";
}  // namespace

class ClamavEngineTest : public ::testing::Test {
 protected:
  SigDir db;
  std::shared_ptr<clamav::EngineHolder> engines = make_holder(db.settings());
  ScanResult scan(const std::string& data) { return clamav::scan(*engines->current(), data); }
};

TEST_F(ClamavEngineTest, LoadsTheDbAndReportsStatus) {
  auto st = engines->status();
  EXPECT_GE(st.signatures, 2u);
  EXPECT_FALSE(st.version.empty());
  EXPECT_EQ(st.generation, 1u);
  EXPECT_EQ(st.database_dir, db.dir.string());
  EXPECT_EQ(st.reloads, 0u);
  EXPECT_GE(st.age_seconds, 0);
  EXPECT_GT(st.load_seconds, 0);
}

TEST_F(ClamavEngineTest, DetectsEicarInMemory) {
  ScanResult r = scan(eicar());
  EXPECT_EQ(r.kind, Kind::Virus);
  EXPECT_TRUE(starts_with(r.name, "Harness.Test.EICAR")) << r.name;
}

TEST_F(ClamavEngineTest, DetectsEicarAsBase64MimeAttachment) {
  std::string mail = mime_with_attachment(eicar(), "eicar.com");
  ASSERT_EQ(mail.find("EICAR"), std::string::npos);  // only the decoded attachment can match
  ScanResult r = scan(mail);
  EXPECT_EQ(r.kind, Kind::Virus);
  EXPECT_TRUE(starts_with(r.name, "Harness.Test.EICAR")) << r.name;
}

TEST_F(ClamavEngineTest, DetectsAttachmentWhateverTheFirstHeader) {
  // The message as received may start with any header: mail parsing must still happen.
  std::string mail = "X-Custom-Thing: 1\nContent-Language: en\n" + mime_with_attachment(eicar(), "e.com");
  EXPECT_EQ(scan(mail).kind, Kind::Virus);
}

TEST_F(ClamavEngineTest, DetectsClamExeFromTestfilesBySha256InsideMail) {
  std::string exe = slurp(kClamExe);
  if (exe.empty()) GTEST_SKIP() << "clamav-testfiles not installed";
  ScanResult r = scan(mime_with_attachment(exe, "clam.exe"));
  EXPECT_EQ(r.kind, Kind::Virus);
  EXPECT_TRUE(starts_with(r.name, "Harness.Test.ClamExe")) << r.name;
}

TEST_F(ClamavEngineTest, CleanTextAndCleanAttachmentsAreClean) {
  EXPECT_EQ(scan("From: a@example.net\nSubject: hi\n\nhello world\n").kind, Kind::Clean);
  std::mt19937 rng(1);
  std::string blob(200000, '\0');
  for (auto& c : blob) c = char(rng());
  ScanResult r = scan(mime_with_attachment(blob, "data.bin"));
  EXPECT_EQ(r.kind, Kind::Clean) << r.name;
}

TEST_F(ClamavEngineTest, ACancelledScanStopsAndSaysSo) {
  Cancel cancel;
  cancel.flag = true;
  EXPECT_EQ(clamav::scan(*engines->current(), mime_with_attachment(eicar(), "e.com"), &cancel).kind, Kind::Cancelled);
}

TEST(ClamavEngine, BadDirectoriesAreErrors) {
  clamav::Settings c;
  c.database_dir = "/nonexistent/clamav-db";
  auto r = clamav::EngineHolder::create(c);
  EXPECT_FALSE(r.holder);
  EXPECT_NE(r.error.find("/nonexistent/clamav-db"), std::string::npos) << r.error;

  SigDir empty;
  for (auto& f : fs::directory_iterator(empty.dir)) fs::remove(f.path());
  c.database_dir = empty.dir.string();
  r = clamav::EngineHolder::create(c);
  EXPECT_FALSE(r.holder);
  EXPECT_FALSE(r.error.empty());

  write(empty.dir / "broken.ndb", "this is not a signature\n");
  r = clamav::EngineHolder::create(c);
  EXPECT_FALSE(r.holder) << "a malformed signature file must not load";
}

// The private directories (mxfront-clamav.*) directly inside `base`.
std::vector<fs::path> private_dirs(const fs::path& base) {
  std::vector<fs::path> out;
  for (auto& f : fs::directory_iterator(base))
    if (f.path().filename().string().starts_with("mxfront-clamav.")) out.push_back(f.path());
  return out;
}

TEST(ClamavEngine, TempDirHoldsThePrivateDirectoryAndAReloadMovesIt) {
  SigDir db, a, b;  // a and b are used as plain directories
  clamav::Settings c = db.settings();
  c.temp_dir = a.dir.string();
  {
    auto engines = make_holder(c);
    ASSERT_TRUE(engines);
    ASSERT_EQ(private_dirs(a.dir).size(), 1u);
    EXPECT_EQ(clamav::scan(*engines->current(), eicar()).kind, Kind::Virus);

    c.temp_dir = b.dir.string();
    ASSERT_EQ(engines->reconfigure(c), "");
    ASSERT_TRUE(engines->reload_now("test"));
    EXPECT_EQ(private_dirs(b.dir).size(), 1u) << "the new engine unpacks into the new temp_dir";
    EXPECT_TRUE(private_dirs(a.dir).empty()) << "the old directory goes with the last engine that used it";
    EXPECT_EQ(clamav::scan(*engines->current(), eicar()).kind, Kind::Virus);

    c.temp_dir = "/nonexistent/tmp";
    std::string err = engines->reconfigure(c);
    EXPECT_NE(err.find("clamav.temp_dir /nonexistent/tmp"), std::string::npos) << err;
  }
  EXPECT_TRUE(private_dirs(b.dir).empty()) << "removed when the holder is gone";

  c.temp_dir = "/nonexistent/tmp";
  auto r = clamav::EngineHolder::create(c);
  EXPECT_FALSE(r.holder);
  EXPECT_NE(r.error.find("/nonexistent/tmp"), std::string::npos) << r.error;
}

TEST(ClamavEngine, ExceededLimitIsReportedAsHeuristicNotClean) {
  SigDir db;
  clamav::Settings c = db.settings();
  c.max_file_size = 1024;
  c.max_scan_size = 1024;
  auto engines = make_holder(c);
  ScanResult r = clamav::scan(*engines->current(), "Subject: big\n\n" + std::string(100000, 'a') + "\n");
  EXPECT_EQ(r.kind, Kind::LimitExceeded) << r.name;
  EXPECT_TRUE(starts_with(r.name, clamav::kLimitsPrefix)) << r.name;
}

TEST_F(ClamavEngineTest, ReloadSwapsWhileOldEngineKeepsServingItsScans) {
  auto old = engines->current();
  std::string marked = "Subject: m\n\nbody " + kMarker + " end\n";
  ASSERT_EQ(clamav::scan(*old, marked).kind, Kind::Clean);

  db.add_marker("marker.ndb", "Harness.Test.Marker", kMarker);
  ASSERT_TRUE(engines->reload_now("test"));
  auto now = engines->current();
  EXPECT_NE(now.get(), old.get());
  EXPECT_EQ(now->generation, 2u);
  ScanResult r = clamav::scan(*now, marked);
  EXPECT_EQ(r.kind, Kind::Virus);
  EXPECT_TRUE(starts_with(r.name, "Harness.Test.Marker")) << r.name;
  // The engine a scan took before the swap still works, with its own signatures.
  EXPECT_EQ(clamav::scan(*old, marked).kind, Kind::Clean);
  EXPECT_EQ(clamav::scan(*old, eicar()).kind, Kind::Virus);
  EXPECT_EQ(engines->status().reloads, 1u);
}

TEST_F(ClamavEngineTest, BackgroundThreadPicksUpANewSignatureFile) {
  db.add_marker("marker.ndb", "Harness.Test.Marker", kMarker);
  std::string marked = "Subject: m\n\n" + kMarker + "\n";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (scan(marked).kind != Kind::Virus && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(scan(marked).kind, Kind::Virus);
  EXPECT_EQ(engines->status().generation, 2u);
}

TEST_F(ClamavEngineTest, FailedReloadKeepsTheOldEngine) {
  auto before = engines->current();
  write(db.dir / "broken.ndb", "garbage without fields\n");
  EXPECT_FALSE(engines->reload_now("test"));
  EXPECT_EQ(engines->current().get(), before.get());
  auto st = engines->status();
  EXPECT_EQ(st.reload_failures, 1u);
  EXPECT_FALSE(st.last_error.empty());
  EXPECT_EQ(scan(eicar()).kind, Kind::Virus);
  // A reconfigure to an unusable directory is refused at once.
  clamav::Settings bad = db.settings();
  bad.database_dir = "/nonexistent/x";
  EXPECT_FALSE(engines->reconfigure(bad).empty());
}

TEST(ClamavVerdict, MapsResultsAndOnLimit) {
  auto v = ClamavFilter::verdict({Kind::Virus, "Sig.X.UNOFFICIAL"}, clamav::OnLimit::Accept);
  EXPECT_EQ(v.action, Action::Reject);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 554);
  EXPECT_EQ(v.reply->enhanced, "5.7.1");
  EXPECT_NE(v.reply->text.find("Sig.X.UNOFFICIAL"), std::string::npos);
  EXPECT_EQ(ClamavFilter::verdict({Kind::Clean, ""}, clamav::OnLimit::Reject).action, Action::Continue);
  ScanResult limit{Kind::LimitExceeded, "Heuristics.Limits.Exceeded.MaxFileSize"};
  EXPECT_EQ(ClamavFilter::verdict(limit, clamav::OnLimit::Accept).action, Action::Continue);
  EXPECT_FALSE(ClamavFilter::verdict(limit, clamav::OnLimit::Accept).failed);
  auto t = ClamavFilter::verdict(limit, clamav::OnLimit::TempFail);
  EXPECT_EQ(t.action, Action::TempFail);
  EXPECT_EQ(t.reply->code, 451);
  auto r = ClamavFilter::verdict(limit, clamav::OnLimit::Reject);
  EXPECT_EQ(r.action, Action::Reject);
  EXPECT_EQ(r.reply->code, 554);
  EXPECT_TRUE(ClamavFilter::verdict({Kind::Error, "CL_EMEM"}, clamav::OnLimit::Accept).failed);
}

// Size and time limits keep the admin's on_limit; every other limit is structure the scanner did
// not see into and never counts as clean (on_structure_limit: reject by default, or tempfail).
TEST(ClamavVerdict, StructureLimitsAreNeverAcceptedSizeLimitsFollowOnLimit) {
  for (const char* size : {"Heuristics.Limits.Exceeded.MaxFileSize", "Heuristics.Limits.Exceeded.MaxScanSize",
                           "Heuristics.Limits.Exceeded.MaxScanTime", "Heuristics.Limits.Exceeded.MaxScanSize.UNOFFICIAL"}) {
    EXPECT_TRUE(clamav::is_size_limit(size)) << size;
    EXPECT_EQ(ClamavFilter::verdict({Kind::LimitExceeded, size}, clamav::OnLimit::Accept).action, Action::Continue);
  }
  for (const char* structure : {"Heuristics.Limits.Exceeded.MaxRecursion", "Heuristics.Limits.Exceeded.MaxFiles",
                                "Heuristics.Limits.Exceeded.EmailMIMEPartsPerMessage", "Heuristics.Limits.Exceeded.MaxFileSizeX",
                                "Heuristics.Limits.Exceeded.SomethingNew"}) {
    EXPECT_FALSE(clamav::is_size_limit(structure)) << structure;
    ScanResult r{Kind::LimitExceeded, structure};
    auto v = ClamavFilter::verdict(r, clamav::OnLimit::Accept);
    EXPECT_EQ(v.action, Action::Reject) << structure;
    ASSERT_TRUE(v.reply);
    EXPECT_EQ(v.reply->code, 554);
    EXPECT_EQ(v.reply->enhanced, "5.6.0");
    auto t = ClamavFilter::verdict(r, clamav::OnLimit::Accept, clamav::OnLimit::TempFail);
    EXPECT_EQ(t.action, Action::TempFail);
    EXPECT_EQ(t.reply->code, 451);
  }
}

namespace {
Verdict run_check(ClamavFilter& f, const std::string& message) {
  boost::asio::io_context io;
  auto ctx = std::make_shared<Context>();
  ctx->session_id = "test";
  ctx->message = std::make_shared<const std::string>(message);
  ctx->cancel = std::make_shared<Cancel>();
  auto fut = boost::asio::co_spawn(io, f.check(Phase::Data, ctx), boost::asio::use_future);
  io.run();
  return fut.get();
}
}  // namespace

TEST_F(ClamavEngineTest, FilterScansOnTheWorkerPool) {
  auto pool = std::make_shared<net::BlockingPool>("cltest", 1, 4);
  ClamavFilter f(engines, pool, db.settings());
  Verdict v = run_check(f, mime_with_attachment(eicar(), "eicar.com"));
  EXPECT_EQ(v.action, Action::Reject);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 554);
  EXPECT_NE(v.reply->text.find("Harness.Test.EICAR"), std::string::npos) << v.reply->text;
  EXPECT_EQ(run_check(f, "Subject: hi\n\nclean\n").action, Action::Continue);
  EXPECT_EQ(pool->stats().completed, 2u);
}

// An attachment wrapped in `depth` nested multiparts (1.4 KB at depth 18).
std::string nested_mime(const std::string& payload, int depth) {
  std::string inner = "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + base64(payload);
  for (int i = 0; i < depth; ++i) {
    std::string b = "b" + std::to_string(i);
    inner = "Content-Type: multipart/mixed; boundary=\"" + b + "\"\n\n--" + b + "\n" + inner + "--" + b + "--\n";
  }
  return "Subject: nested\nMIME-Version: 1.0\n" + inner;
}

// Issue 12.2: a virus nested deeper than clamav.max_recursion (defaults: 16, on_limit accept) was
// relayed. Structure the scanner did not see into is never clean: 554 5.6.0 by default.
TEST_F(ClamavEngineTest, VirusNestedPastMaxRecursionIsRefusedWithTheDefaults) {
  auto pool = std::make_shared<net::BlockingPool>("cltest", 1, 4);
  clamav::Settings settings = db.settings();  // max_recursion 16, on_limit accept
  ASSERT_EQ(settings.on_limit, clamav::OnLimit::Accept);
  ClamavFilter f(engines, pool, settings);
  Verdict shallow = run_check(f, nested_mime(eicar(), 10));
  EXPECT_EQ(shallow.action, Action::Reject);
  ASSERT_TRUE(shallow.reply);
  EXPECT_NE(shallow.reply->text.find("Harness.Test.EICAR"), std::string::npos) << shallow.reply->text;
  std::string deep = nested_mime(eicar(), 18);
  EXPECT_LT(deep.size(), 1500u);
  ScanResult r = scan(deep);
  EXPECT_EQ(r.kind, Kind::LimitExceeded) << r.name;
  EXPECT_TRUE(starts_with(r.name, "Heuristics.Limits.Exceeded.MaxRecursion")) << r.name;
  Verdict v = run_check(f, deep);
  EXPECT_EQ(v.action, Action::Reject) << v.reason;
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 554);
  EXPECT_EQ(v.reply->enhanced, "5.6.0");
  EXPECT_NE(v.reply->text.find("MaxRecursion"), std::string::npos) << v.reply->text;
  settings.on_structure_limit = clamav::OnLimit::TempFail;
  ClamavFilter tempfail(engines, pool, settings);
  EXPECT_EQ(run_check(tempfail, deep).action, Action::TempFail);
}

TEST_F(ClamavEngineTest, FullWorkerQueueIsFilterBusy) {
  auto pool = std::make_shared<net::BlockingPool>("cltest", 1, 0);  // every job is shed
  ClamavFilter f(engines, pool, db.settings());
  Verdict v = run_check(f, eicar());
  EXPECT_EQ(v.action, Action::TempFail);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 451);
  EXPECT_EQ(v.reply->text, core::replies::filter_busy().text);
}

namespace {
std::shared_ptr<const config::Config> config_with(const std::string& dir) {
  auto c = std::make_shared<config::Config>();
  c->filters.workers.threads = 1;
  auto& s = c->sections.edit<clamav::Settings>("clamav");
  s.database_dir = dir;
  s.reload_check = config::Seconds(60);  // only explicit reloads in this test
  return c;
}

bool wait_generation(clamav::EngineHolder& h, uint64_t g) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (h.status().generation < g && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return h.status().generation >= g;
}
}  // namespace

TEST(ClamavResources, EngineSurvivesGenerationsAndOnlyACommittedOneReloadsIt) {
  SigDir db;
  auto c1 = config_with(db.dir.string());
  Resources res(*c1);
  const Descriptor d = clamav::descriptor();
  BuildContext b1{c1, res, nullptr};
  Built first = d.build(b1);
  ASSERT_TRUE(first.filter) << first.error;
  auto engines = clamav::shared_engine(res);
  ASSERT_TRUE(engines);
  ASSERT_TRUE(d.build(b1).filter);                         // a second profile: the same engine
  EXPECT_EQ(clamav::shared_engine(res), engines);
  d.commit(b1);                                            // the generation that created it: no reload
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(engines->status().generation, 1u);

  auto bad = config_with("/nonexistent/clamav-db");        // a reload to a bad directory is refused
  EXPECT_FALSE(d.build(BuildContext{bad, res, nullptr}).filter);
  auto c2 = config_with(db.dir.string());                  // SIGHUP: checked, then committed
  BuildContext b2{c2, res, nullptr};
  Built second = d.build(b2);
  ASSERT_TRUE(second.filter) << second.error;
  EXPECT_EQ(clamav::shared_engine(res), engines);          // held across generations
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(engines->status().generation, 1u) << "reloaded before the generation was committed";
  d.commit(b2);
  EXPECT_TRUE(wait_generation(*engines, 2));
}

TEST(ClamavHealth, OkWithVersionAndSignaturesOrTheLastReloadError) {
  clamav::Status st;
  st.version = "1.4.6";
  st.signatures = 3;
  st.generation = 2;
  st.age_seconds = 12;
  EXPECT_EQ(clamav::health(st), "ok: libclamav 1.4.6, 3 signatures, engine 2 loaded 12 s ago");
  st.last_error = "cannot load signatures from /db: Malformed database";
  std::string h = clamav::health(st);
  EXPECT_NE(h.rfind("ok: ", 0), 0u) << h;  // an error for the dependency monitor
  EXPECT_NE(h.find("Malformed database"), std::string::npos) << h;
  EXPECT_NE(h.find("engine 2"), std::string::npos) << h;
}
