// net::parse_response on crafted messages, net::DnsCache bounds (fake clock), and net::Resolver
// against an in-process UDP DNS server: answers, NXDOMAIN, a server that never answers, and an
// io_context destroyed with queries pending (no crash, no fd left behind).
#include <utility>

#include <dirent.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/dns.h"
#include "net/dns_cache.h"

namespace asio = boost::asio;
using asio::ip::udp;
using namespace std::chrono_literals;
using net::DnsAnswer;
using net::DnsStatus;
using net::DnsType;
using Bytes = std::vector<unsigned char>;

namespace {

void u16(Bytes& b, unsigned v) {
  b.push_back(static_cast<unsigned char>(v >> 8));
  b.push_back(static_cast<unsigned char>(v));
}
void u32(Bytes& b, uint32_t v) {
  u16(b, v >> 16);
  u16(b, v & 0xFFFF);
}
void name(Bytes& b, const std::string& n) {
  size_t start = 0;
  while (start < n.size()) {
    size_t dot = n.find('.', start);
    if (dot == std::string::npos) dot = n.size();
    b.push_back(static_cast<unsigned char>(dot - start));
    b.insert(b.end(), n.begin() + static_cast<long>(start), n.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  b.push_back(0);
}

// A response to `question` (the raw query) with rcode and answers appended by `fill`.
struct Msg {
  Bytes b;
  size_t question_end = 12;
};
Msg response(const Bytes& query, unsigned rcode, unsigned an, unsigned ns) {
  Msg m;
  m.b.assign(query.begin(), query.begin() + 2);  // id
  u16(m.b, 0x8180 | rcode);
  u16(m.b, 1);
  u16(m.b, an);
  u16(m.b, ns);
  u16(m.b, 0);
  m.b.insert(m.b.end(), query.begin() + 12, query.end());  // the question
  return m;
}
Bytes query_for(const std::string& n, unsigned type) {
  Bytes q = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  name(q, n);
  u16(q, type);
  u16(q, 1);
  return q;
}
void a_record(Bytes& b, uint32_t addr, uint32_t ttl) {
  u16(b, 0xC00C);  // pointer to the question name
  u16(b, 1);
  u16(b, 1);
  u32(b, ttl);
  u16(b, 4);
  u32(b, addr);
}
void txt_record(Bytes& b, const std::vector<std::string>& parts, uint32_t ttl) {
  u16(b, 0xC00C);
  u16(b, 16);
  u16(b, 1);
  u32(b, ttl);
  size_t len = 0;
  for (const auto& p : parts) len += 1 + p.size();
  u16(b, static_cast<unsigned>(len));
  for (const auto& p : parts) {
    b.push_back(static_cast<unsigned char>(p.size()));
    b.insert(b.end(), p.begin(), p.end());
  }
}
void soa_record(Bytes& b, uint32_t ttl, uint32_t minimum) {
  name(b, "bl.test");
  u16(b, 6);
  u16(b, 1);
  u32(b, ttl);
  Bytes rd;
  name(rd, "ns.bl.test");
  name(rd, "hostmaster.bl.test");
  for (uint32_t v : {1u, 600u, 300u, 86400u}) u32(rd, v);
  u32(rd, minimum);
  u16(b, static_cast<unsigned>(rd.size()));
  b.insert(b.end(), rd.begin(), rd.end());
}

int open_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
TEST(DnsParse, ARecordsWithSmallestTtl) {
  Msg m = response(query_for("2.0.0.127.zen.test", 1), 0, 2, 0);
  a_record(m.b, 0x7F000002, 300);
  a_record(m.b, 0x7F00000A, 60);
  DnsAnswer a = net::parse_response(m.b.data(), m.b.size(), DnsType::A);
  EXPECT_EQ(a.status, DnsStatus::Ok);
  EXPECT_EQ(a.a, (std::vector<uint32_t>{0x7F000002, 0x7F00000A}));
  EXPECT_EQ(a.ttl, 60u);
}

TEST(DnsParse, TxtCharacterStringsJoined) {
  Msg m = response(query_for("2.0.0.127.bl.test", 16), 0, 1, 0);
  txt_record(m.b, {"Listed in bl.test, ", "see http://bl.test/"}, 120);
  DnsAnswer a = net::parse_response(m.b.data(), m.b.size(), DnsType::TXT);
  EXPECT_EQ(a.status, DnsStatus::Ok);
  ASSERT_EQ(a.txt.size(), 1u);
  EXPECT_EQ(a.txt[0], "Listed in bl.test, see http://bl.test/");
  EXPECT_EQ(a.ttl, 120u);
}

TEST(DnsParse, NxdomainWithNegativeTtlFromSoa) {
  Msg m = response(query_for("1.0.0.127.bl.test", 1), 3, 0, 1);
  soa_record(m.b, 300, 60);
  DnsAnswer a = net::parse_response(m.b.data(), m.b.size(), DnsType::A);
  EXPECT_EQ(a.status, DnsStatus::NxDomain);
  EXPECT_EQ(a.ttl, 60u);
}

TEST(DnsParse, OtherTypesOnlyIsNoData) {
  Msg m = response(query_for("2.0.0.127.bl.test", 16), 0, 1, 0);
  a_record(m.b, 0x7F000002, 300);
  EXPECT_EQ(net::parse_response(m.b.data(), m.b.size(), DnsType::TXT).status, DnsStatus::NoData);
}

// Found by dns_fuzz: an NXDOMAIN that also carries records of the type is negative, without them.
TEST(DnsParse, NxdomainWithRecordsCarriesNone) {
  Msg m = response(query_for("2.0.0.127.bl.test", 1), 3, 1, 1);
  a_record(m.b, 0x7F000002, 300);
  soa_record(m.b, 300, 30);
  DnsAnswer a = net::parse_response(m.b.data(), m.b.size(), DnsType::A);
  EXPECT_EQ(a.status, DnsStatus::NxDomain);
  EXPECT_TRUE(a.a.empty());
  EXPECT_EQ(a.ttl, 30u);
}

TEST(DnsParse, ServfailAndTruncatedAreFailures) {
  Msg m = response(query_for("x.bl.test", 1), 2, 0, 0);
  EXPECT_EQ(net::parse_response(m.b.data(), m.b.size(), DnsType::A).status, DnsStatus::Failure);
  Msg ok = response(query_for("x.bl.test", 1), 0, 1, 0);
  a_record(ok.b, 0x7F000002, 300);
  for (size_t cut = 0; cut < ok.b.size(); ++cut)
    EXPECT_EQ(net::parse_response(ok.b.data(), cut, DnsType::A).status, DnsStatus::Failure) << cut;
}

// AAAA, MX and PTR (the SPF lookups): names inside RDATA follow compression pointers.
void rr_header(Bytes& b, unsigned type, uint32_t ttl, size_t rdlen) {
  u16(b, 0xC00C);
  u16(b, type);
  u16(b, 1);
  u32(b, ttl);
  u16(b, static_cast<unsigned>(rdlen));
}

TEST(DnsParse, AaaaRecords) {
  Msg m = response(query_for("host.spf.test", 28), 0, 2, 0);
  Bytes addr = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xcb, 0x01};
  rr_header(m.b, 28, 300, 16);
  m.b.insert(m.b.end(), addr.begin(), addr.end());
  rr_header(m.b, 28, 300, 4);  // wrong length: skipped
  u32(m.b, 0x7F000001);
  DnsAnswer a = net::parse_response(m.b.data(), m.b.size(), DnsType::AAAA);
  EXPECT_EQ(a.status, DnsStatus::Ok);
  ASSERT_EQ(a.aaaa.size(), 1u);
  EXPECT_TRUE(std::equal(addr.begin(), addr.end(), a.aaaa[0].begin()));
  EXPECT_TRUE(a.a.empty());
}

TEST(DnsParse, MxNamesWithCompression) {
  Msg m = response(query_for("spf.test", 15), 0, 3, 0);
  // mail.spf.test: "mail" + pointer to the question name (offset 12)
  rr_header(m.b, 15, 300, 2 + 1 + 4 + 2);
  u16(m.b, 10);
  m.b.push_back(4);
  m.b.insert(m.b.end(), {'M', 'a', 'I', 'l'});
  u16(m.b, 0xC00C);
  size_t mail_at = m.b.size() - 7;  // where "mail.spf.test" starts
  // backup.mail.spf.test: "backup" + pointer to the name of the first record's exchange
  rr_header(m.b, 15, 60, 2 + 1 + 6 + 2);
  u16(m.b, 20);
  m.b.push_back(6);
  m.b.insert(m.b.end(), {'b', 'a', 'c', 'k', 'u', 'p'});
  u16(m.b, 0xC000 | static_cast<unsigned>(mail_at));
  // null MX (RFC 7505): the root name
  rr_header(m.b, 15, 300, 3);
  u16(m.b, 0);
  m.b.push_back(0);
  DnsAnswer a = net::parse_response(m.b.data(), m.b.size(), DnsType::MX);
  EXPECT_EQ(a.status, DnsStatus::Ok);
  ASSERT_EQ(a.mx.size(), 3u);
  EXPECT_EQ(a.mx[0].preference, 10);
  EXPECT_EQ(a.mx[0].exchange, "mail.spf.test");
  EXPECT_EQ(a.mx[1].preference, 20);
  EXPECT_EQ(a.mx[1].exchange, "backup.mail.spf.test");
  EXPECT_EQ(a.mx[2].exchange, "");
  EXPECT_EQ(a.ttl, 60u);
}

TEST(DnsParse, MxWithBadNamesIsSkipped) {
  Msg m = response(query_for("spf.test", 15), 0, 2, 0);
  size_t self = m.b.size() + 12 + 2;  // a pointer to itself (forward/loop): refused
  rr_header(m.b, 15, 300, 4);
  u16(m.b, 10);
  u16(m.b, 0xC000 | static_cast<unsigned>(self));
  rr_header(m.b, 15, 300, 6);  // label running past the RDATA
  u16(m.b, 10);
  m.b.push_back(9);
  m.b.insert(m.b.end(), {'a', 'b', 'c'});
  DnsAnswer a = net::parse_response(m.b.data(), m.b.size(), DnsType::MX);
  EXPECT_TRUE(a.mx.empty());
  EXPECT_EQ(a.status, DnsStatus::NoData);
}

TEST(DnsParse, PtrName) {
  Msg m = response(query_for("1.2.0.192.in-addr.arpa", 12), 0, 1, 0);
  Bytes rd;
  name(rd, "mx.example.org");
  rr_header(m.b, 12, 300, rd.size());
  m.b.insert(m.b.end(), rd.begin(), rd.end());
  DnsAnswer a = net::parse_response(m.b.data(), m.b.size(), DnsType::PTR);
  ASSERT_EQ(a.ptr.size(), 1u);
  EXPECT_EQ(a.ptr[0], "mx.example.org");
}

TEST(DnsParse, ReadNameBounds) {
  Bytes b;
  name(b, "a.b");
  std::string out;
  EXPECT_TRUE(net::read_name(b.data(), b.size(), 0, out));
  EXPECT_EQ(out, "a.b");
  EXPECT_FALSE(net::read_name(b.data(), b.size() - 1, 0, out));  // no terminating root label
  Bytes loop = {0xC0, 0x00};
  EXPECT_FALSE(net::read_name(loop.data(), loop.size(), 0, out));
  Bytes bad = {0x80, 0x00};
  EXPECT_FALSE(net::read_name(bad.data(), bad.size(), 0, out));
}

// ------------------------------------------------------------------------------------------------
TEST(DnsCache, EntryLivesMinOfTtlAndMaxTtl) {
  net::DnsCache c;
  auto t0 = net::DnsCache::Clock::time_point{} + 1000s;
  DnsAnswer a;
  a.status = DnsStatus::Ok;
  a.ttl = 600;
  c.put("A x", a, t0, 60s, 10);
  EXPECT_TRUE(c.get("A x", t0 + 59s));
  EXPECT_FALSE(c.get("A x", t0 + 60s));  // max_ttl wins over the answer's 600
  EXPECT_EQ(c.size(), 0u);                // the expired entry went when met
  a.ttl = 5;
  c.put("A y", a, t0, 60s, 10);
  EXPECT_TRUE(c.get("A y", t0 + 4s));
  EXPECT_FALSE(c.get("A y", t0 + 5s));  // the answer's TTL wins over max_ttl
}

TEST(DnsCache, ZeroTtlOrCapacityIsNotStored) {
  net::DnsCache c;
  auto t0 = net::DnsCache::Clock::time_point{} + 1000s;
  DnsAnswer a;
  a.ttl = 0;
  c.put("A x", a, t0, 60s, 10);
  a.ttl = 30;
  c.put("A y", a, t0, 0s, 10);
  c.put("A z", a, t0, 60s, 0);
  EXPECT_EQ(c.size(), 0u);
}

TEST(DnsCache, CapacityEvictsTheOldestAndExpiredFirst) {
  net::DnsCache c;
  auto t0 = net::DnsCache::Clock::time_point{} + 1000s;
  DnsAnswer a;
  a.ttl = 100;
  for (int i = 0; i < 5; ++i) c.put("k" + std::to_string(i), a, t0 + std::chrono::seconds(i), 3600s, 3);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_FALSE(c.get("k0", t0 + 5s));
  EXPECT_FALSE(c.get("k1", t0 + 5s));
  EXPECT_TRUE(c.get("k2", t0 + 5s));
  EXPECT_TRUE(c.get("k4", t0 + 5s));
  // k2..k4 expire at t0+102..104; a put at t0+103.5 drops the expired k2 and k3 though not full
  c.put("k5", a, t0 + 103500ms, 3600s, 10);
  EXPECT_EQ(c.size(), 2u);
  // a re-put replaces the entry (and its age)
  a.ttl = 7;
  c.put("k4", a, t0 + 103500ms, 3600s, 10);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.get("k4", t0 + 104s)->ttl, 7u);
}

// ------------------------------------------------------------------------------------------------
// A DNS server on 127.0.0.1: "2.0.0.127.bl.test" A -> 127.0.0.2 (TTL 60), TXT -> "listed";
// anything else NXDOMAIN. It stops after `stop` is set and one more query arrives.
class FakeDns {
 public:
  explicit FakeDns(asio::io_context& io) : sock_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
  std::string address() const { return "127.0.0.1:" + std::to_string(sock_.local_endpoint().port()); }
  int queries = 0;
  void close() { sock_.close(); }

  asio::awaitable<void> serve() {
    for (;;) {
      Bytes buf(512);
      udp::endpoint peer;
      boost::system::error_code ec;
      size_t n = co_await sock_.async_receive_from(asio::buffer(buf), peer, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      ++queries;
      buf.resize(n);
      // question name ends at the first 0 label after the header
      size_t qend = 12;
      while (qend < n && buf[qend]) qend += buf[qend] + 1;
      std::string qn;
      for (size_t i = 12; i < qend; i += buf[i] + 1) qn += (qn.empty() ? "" : ".") + std::string(buf.begin() + i + 1, buf.begin() + i + 1 + buf[i]);
      unsigned type = buf[qend + 1] << 8 | buf[qend + 2];
      Bytes q(buf.begin(), buf.begin() + qend + 5);
      Msg m;
      if (qn == "2.0.0.127.bl.test") {
        m = response(q, 0, 1, 0);
        if (type == 1) a_record(m.b, 0x7F000002, 60);
        else txt_record(m.b, {"listed"}, 60);
      } else {
        m = response(q, 3, 0, 1);
        soa_record(m.b, 300, 30);
      }
      co_await sock_.async_send_to(asio::buffer(m.b), peer, asio::redirect_error(asio::use_awaitable, ec));
    }
  }

 private:
  udp::socket sock_;
};

TEST(Resolver, AnswersNxdomainAndTimeout) {
  asio::io_context io;
  FakeDns server(io);
  udp::socket hole(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));  // never answers
  asio::co_spawn(io, server.serve(), asio::detached);
  net::DnsOptions o{{server.address()}, 500ms, 2};
  net::DnsOptions silent{{"127.0.0.1:" + std::to_string(hole.local_endpoint().port())}, 100ms, 1};
  bool finished = false;
  auto test = [&]() -> asio::awaitable<void> {
    auto r = net::Resolver::get(io.get_executor(), o);
    EXPECT_EQ(r, net::Resolver::get(io.get_executor(), o));  // one channel per io_context and options
    DnsAnswer a = co_await r->query("2.0.0.127.bl.test", DnsType::A);
    EXPECT_EQ(a.status, DnsStatus::Ok) << a.error;
    EXPECT_EQ(a.a, std::vector<uint32_t>{0x7F000002});
    EXPECT_EQ(a.ttl, 60u);
    DnsAnswer t = co_await r->query("2.0.0.127.bl.test", DnsType::TXT);
    EXPECT_EQ(t.txt, std::vector<std::string>{"listed"});
    DnsAnswer n = co_await r->query("3.0.0.127.bl.test", DnsType::A);
    EXPECT_EQ(n.status, DnsStatus::NxDomain);
    EXPECT_EQ(n.ttl, 30u);
    auto t0 = std::chrono::steady_clock::now();
    DnsAnswer to = co_await net::Resolver::get(io.get_executor(), silent)->query("2.0.0.127.bl.test", DnsType::A);
    EXPECT_EQ(to.status, DnsStatus::Timeout) << to.error;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
    finished = true;
    server.close();
    hole.close();
  };
  auto work = test();
  asio::co_spawn(io, std::move(work), asio::detached);
  io.run_for(10s);
  EXPECT_TRUE(finished);
  EXPECT_EQ(server.queries, 3);
}

TEST(Resolver, ManyConcurrentQueries) {
  asio::io_context io;
  FakeDns server(io);
  asio::co_spawn(io, server.serve(), asio::detached);
  net::DnsOptions o{{server.address()}, 1000ms, 2};
  int ok = 0, nx = 0;
  auto one = [&](int i) -> asio::awaitable<void> {
    std::string n = i % 2 ? "2.0.0.127.bl.test" : "n" + std::to_string(i) + ".bl.test";
    DnsAnswer a = co_await net::Resolver::get(io.get_executor(), o)->query(n, DnsType::A);
    if (a.status == DnsStatus::Ok) ++ok;
    if (a.status == DnsStatus::NxDomain) ++nx;
    if (ok + nx == 100) server.close();
  };
  for (int i = 0; i < 100; ++i) {
    auto w = one(i);
    asio::co_spawn(io, std::move(w), asio::detached);
  }
  io.run_for(10s);
  EXPECT_EQ(ok, 50);
  EXPECT_EQ(nx, 50);
}

TEST(Resolver, IoContextDestroyedWithQueriesPendingLeavesNoFd) {
  int before = open_fds();
  bool completed = false;
  {
    asio::io_context io;
    udp::socket hole(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    net::DnsOptions o{{"127.0.0.1:" + std::to_string(hole.local_endpoint().port())}, 5000ms, 3};
    auto q = [&]() -> asio::awaitable<void> {
      co_await net::Resolver::get(io.get_executor(), o)->query("x.bl.test", DnsType::A);
      completed = true;  // never: the io_context goes first
    };
    for (int i = 0; i < 3; ++i) {
      auto w = q();
      asio::co_spawn(io, std::move(w), asio::detached);
    }
    io.run_for(100ms);
    EXPECT_GE(net::Resolver::get(io.get_executor(), o)->open_sockets(), 1u);
  }
  EXPECT_FALSE(completed);
  EXPECT_EQ(open_fds(), before);
}

TEST(Resolver, BadServerIsAFailureNotACrash) {
  asio::io_context io;
  net::DnsOptions o{{"not-an-address:53"}, 100ms, 1};
  DnsAnswer a;
  auto q = [&]() -> asio::awaitable<void> { a = co_await net::Resolver::get(io.get_executor(), o)->query("x.test", DnsType::A); };
  auto w = q();
  asio::co_spawn(io, std::move(w), asio::detached);
  io.run_for(2s);
  EXPECT_EQ(a.status, DnsStatus::Failure);
  EXPECT_FALSE(a.error.empty());
}
