// net::Resolver — non-blocking DNS queries (c-ares) driven by Asio, for the DNS lists (rbl).
// Contract:
//  * One c-ares channel per io_context and per option set (servers, timeout, tries), kept in an
//    io_context service: a channel is not thread-safe, so the io_context must be run by ONE thread
//    (mxfront's I/O threads each run their own) and get()/query() are called on that thread.
//  * `co_await r->query(name, DnsType::A)` never blocks; it completes with the answer, NxDomain /
//    NoData (not there), Timeout (after timeout * tries), or Failure (SERVFAIL, REFUSED, no server).
//  * c-ares owns its sockets; they are watched through non-owning descriptors that are released
//    before c-ares closes them. When the io_context is destroyed, the channels are destroyed and
//    pending queries are dropped without their handlers being called (Asio's shutdown rule).
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/dns_parse.h"

namespace net {

struct DnsOptions {
  std::vector<std::string> servers;            // "host:port" / "[v6]:port"; empty = /etc/resolv.conf
  std::chrono::milliseconds timeout{2000};     // first try; c-ares backs off on later rounds
  unsigned tries = 2;
  bool error_answers = false;                  // a SERVFAIL/REFUSED answer is the answer (ARES_FLAG_NOCHECKRESP),
                                               // not a reason to ask the next server: health probes
  std::string key() const;                     // identifies the channel
};

class Resolver : public std::enable_shared_from_this<Resolver> {
 public:
  // The channel of ex's io_context for `o`, created on first use. Call on that io_context's thread.
  static std::shared_ptr<Resolver> get(const boost::asio::any_io_executor& ex, const DnsOptions& o);

  // `name` must stay valid until the co_await completes (the caller's local is fine).
  boost::asio::awaitable<DnsAnswer> query(std::string_view name, DnsType type);

  size_t open_sockets() const;   // sockets c-ares has open now (tests)
  const std::string& init_error() const { return init_error_; }

  Resolver(boost::asio::any_io_executor ex, const DnsOptions& o);  // use get()
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;
  void shutdown();  // destroys the channel; pending queries are dropped (io_context shutdown)

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  std::string init_error_;
};

}  // namespace net
