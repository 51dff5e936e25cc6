// Server: builds the I/O threads and acceptors, spreads accepted sockets over the threads,
// handles SIGTERM/SIGINT (drain, then exit 0) and SIGHUP (validated reload).
#include "smtpd/server.h"

#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <thread>
#include <vector>

#include "config/load.h"
#include "core/log.h"
#include "core/metrics.h"
#include "filters/clamav.h"
#include "filters/relay_control.h"
#include "ldap/factory.h"
#include "smtpd/session.h"
#include "smtpd/tls.h"

namespace smtpd {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
// The filter registry: name -> instance. Names are validated by the config loader; a filter
// that cannot be built (a bad signature directory, say) makes the whole generation invalid.
struct FilterOrError {
  std::shared_ptr<filters::Filter> filter;
  std::string error;
};
FilterOrError make_filter(const std::string& name, const Snapshot& s) {
  if (name == "relay_control") return {std::make_shared<filters::RelayControl>(s.config->local_domains, s.directory), {}};
  if (name == "clamav") {
    auto engines = s.resources->clamav_for(s.config);
    if (!engines.engines) return {nullptr, engines.error};
    return {std::make_shared<filters::ClamavFilter>(engines.engines, s.resources->workers, s.config->filters.clamav), {}};
  }
  return {nullptr, "filter '" + name + "' is not built into this mxfront"};
}
}  // namespace

SnapshotOrError make_snapshot(std::shared_ptr<const config::Config> c, std::shared_ptr<filters::Resources> res) {
  auto s = std::make_shared<Snapshot>();
  s->config = c;
  s->resources = res ? std::move(res) : std::make_shared<filters::Resources>(*c);
  TlsContextOrError tls = make_tls_context(c->tls);
  if (!tls.error.empty()) return {nullptr, tls.error};
  s->tls = tls.ctx;
  ldap::DirectoryOrError dir = ldap::make_directory(c->directory, nullptr);
  if (!dir.error.empty()) return {nullptr, "directory: " + dir.error};
  s->directory = dir.dir;
  for (const auto& p : c->profiles) {
    auto chain = std::make_shared<filters::Chain>(p.reject_score, p.tag_score);
    for (const auto& name : p.filters) {
      FilterOrError f = make_filter(name, *s);
      if (!f.filter) return {nullptr, f.error};
      chain->add(f.filter, c->filters.of(name));
    }
    s->chains[p.name] = chain;
  }
  s->resources->commit_clamav(c);  // only now: a refused generation must not touch the engine
  return {s, {}};
}

struct Server::Impl {
  explicit Impl(std::shared_ptr<const Snapshot> s) : snapshot(std::move(s)), shared(*snapshot->config) {}

  std::shared_ptr<const Snapshot> snapshot;  // read and swapped with std::atomic_load/store
  Shared shared;
  asio::io_context main{1};
  std::vector<std::unique_ptr<asio::io_context>> workers;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  size_t next_worker = 0;
  int exit_code = 0;

  std::shared_ptr<const Snapshot> current() const { return std::atomic_load(&snapshot); }

  asio::io_context& pick_worker() { return *workers[next_worker++ % workers.size()]; }

  bool open_listeners() {
    for (const auto& l : current()->config->listeners) {
      try {
        tcp::endpoint ep(asio::ip::make_address(l.host), l.port);
        auto a = std::make_unique<tcp::acceptor>(main);
        a->open(ep.protocol());
        a->set_option(tcp::acceptor::reuse_address(true));
        if (ep.address().is_v6()) a->set_option(asio::ip::v6_only(true));
        a->bind(ep);
        a->listen(asio::socket_base::max_listen_connections);
        core::log().info("listening on {} profile={}", l.name(), l.profile);
        acceptors.push_back(std::move(a));
      } catch (const std::exception& e) {
        core::log().error("cannot listen on {}: {}", l.name(), e.what());
        return false;
      }
    }
    return true;
  }

  asio::awaitable<void> accept_loop(tcp::acceptor& a, config::Listener listener) {
    std::string name = listener.name();
    asio::steady_timer backoff(main);
    for (;;) {
      tcp::socket s(pick_worker());
      boost::system::error_code ec;
      co_await a.async_accept(s, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !a.is_open()) co_return;
      if (ec) {
        // e.g. EMFILE: log, pause briefly instead of spinning, keep serving.
        core::log().warn("accept on {}: {}", name, ec.message());
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      start_session(std::move(s), current(), shared, listener);
    }
  }

  void reload() {
    auto cur = current();
    config::LoadResult r = config::load(cur->config->source);
    if (!r.config) {
      core::log().error("reload refused, keeping config {}: {}", cur->config->hash.substr(0, 12), r.error);
      return;
    }
    SnapshotOrError snap = make_snapshot(r.config, cur->resources);
    if (!snap.snap) {
      core::log().error("reload refused, keeping config {}: {}", cur->config->hash.substr(0, 12), snap.error);
      return;
    }
    std::atomic_store(&snapshot, snap.snap);
    core::init_logging(r.config->log_level, r.config->log_syslog);
    core::log().info("stats {}", core::counters_line());
    core::log().info("reloaded config {} (listeners and connection limits apply at restart)", r.config->hash.substr(0, 12));
  }

  asio::awaitable<void> drain() {
    shared.draining = true;
    for (auto& a : acceptors) {
      boost::system::error_code ec;
      a->close(ec);
    }
    auto cfg = current()->config;
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(cfg->shutdown_timeout);
    core::log().info("draining: {} sessions, {} in a transaction", shared.sessions.load(), shared.transactions.load());
    asio::steady_timer t(main);
    while (shared.sessions.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      t.expires_after(std::chrono::milliseconds(50));
      co_await t.async_wait(asio::use_awaitable);
    }
    core::log().info("drained: {} sessions left", shared.sessions.load());
    main.stop();
  }

  asio::awaitable<void> signals() {
    asio::signal_set sigs(main, SIGTERM, SIGINT, SIGHUP);
    for (;;) {
      int sig = co_await sigs.async_wait(asio::use_awaitable);
      if (sig == SIGHUP) {
        reload();
        continue;
      }
      core::log().info("signal {}: stop accepting, draining", sig);
      co_await drain();
      co_return;
    }
  }
};

Server::Server(std::shared_ptr<const Snapshot> s) : impl_(std::make_unique<Impl>(std::move(s))) {}
Server::~Server() = default;

namespace {
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}
}  // namespace

int Server::run() {
  Impl& s = *impl_;
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  auto cfg = s.current()->config;
  unsigned n = cfg->io_threads ? cfg->io_threads : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) {
    s.workers.push_back(std::make_unique<asio::io_context>(1));
    s.guards.push_back(asio::make_work_guard(*s.workers.back()));
  }
  if (!s.open_listeners()) return 1;
  for (unsigned i = 0; i < n; ++i) s.threads.emplace_back([ctx = s.workers[i].get()] { ctx->run(); });
  for (size_t i = 0; i < s.acceptors.size(); ++i)
    asio::co_spawn(s.main, s.accept_loop(*s.acceptors[i], cfg->listeners[i]), asio::detached);
  asio::co_spawn(s.main, s.signals(), asio::detached);
  core::log().info("mxfront started: {} I/O threads, config {}", n, cfg->hash.substr(0, 12));
  s.main.run();
  for (auto& w : s.workers) w->stop();
  for (auto& t : s.threads) t.join();
  core::log().info("stats {}", core::counters_line());
  core::log().info("mxfront stopped");
  return s.exit_code;
}

}  // namespace smtpd
