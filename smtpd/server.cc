// Server: builds the I/O threads and acceptors, spreads accepted sockets over the threads,
// handles SIGTERM/SIGINT (drain, then exit 0) and SIGHUP (validated reload).
#include "smtpd/server.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
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
#include "filters/ocr/engine.h"
#include "filters/ocr/ocr_filter.h"
#include "filters/rbl.h"
#include "filters/relay_control.h"
#include "filters/rules.h"
#include "ldap/factory.h"
#include "ops/admin_server.h"
#include "ops/dependencies.h"
#include "ops/service_manager.h"
#include "smtpd/session.h"
#include "smtpd/tls.h"

#include <dirent.h>
#include <future>
#include <mutex>
#include <set>

namespace smtpd {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
sigset_t control_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGHUP);
  return s;
}

// The filter registry: name -> instance. Names are validated by the config loader; a filter
// that cannot be built (a bad signature directory, say) makes the whole generation invalid.
struct FilterOrError {
  std::shared_ptr<filters::Filter> filter;
  std::string error;
};
FilterOrError make_filter(const std::string& name, const Snapshot& s) {
  if (name == "relay_control") return {std::make_shared<filters::RelayControl>(s.config->local_domains, s.directory), {}};
  if (name == "rbl") return {std::make_shared<filters::Rbl>(s.config->filters.rbl, s.resources->dns_cache), {}};
  if (name == "rules") {
    std::string err;
    auto f = filters::Rules::build(s.config->filters.rules, s.resources->workers, err);
    return {f, f ? std::string() : "rules: " + err};
  }
  if (name == "clamav") {
    auto engines = s.resources->clamav_for(s.config);
    if (!engines.engines) return {nullptr, engines.error};
    return {std::make_shared<filters::ClamavFilter>(engines.engines, s.resources->workers, s.config->filters.clamav), {}};
  }
  if (name == "ocr") {
    std::string err;
    const config::Ocr& o = s.config->filters.ocr;
    auto f = filters::OcrFilter::build(o, s.resources->workers, s.resources->ocr_cache, err);
    if (f) s.resources->ocr_cache->configure(o.cache_size, std::chrono::duration_cast<std::chrono::steady_clock::duration>(o.cache_ttl));
    return {f, err};
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

// The shared dependencies of a config generation, each with its bounded background check.
std::vector<ops::Dependency> dependencies_of(const Snapshot& s) {
  using std::chrono::milliseconds;
  std::vector<ops::Dependency> deps;
  const config::Config& c = *s.config;
  for (const auto& srv : c.qmqp.servers) {
    auto timeout = std::min(milliseconds(2000), c.qmqp.connect_timeout);
    deps.push_back({"qmqp", fmt::format("{}:{}", srv.host, srv.port),
                    [host = srv.host, port = srv.port, timeout] { return ops::tcp_connect_check(host, port, timeout); }});
  }
  if (c.directory.type == "ldap")
    for (const auto& uri : c.directory.uris) {
      // ldap://host[:port] or ldaps://host[:port]: the directory server answers TCP connections.
      bool tls = uri.rfind("ldaps://", 0) == 0;
      std::string rest = uri.substr(uri.find("://") + 3);
      rest = rest.substr(0, rest.find('/'));
      std::string host = rest;
      uint16_t port = tls ? 636 : 389;
      if (size_t colon = rest.rfind(':'); colon != std::string::npos && rest.find(']') == std::string::npos) {
        host = rest.substr(0, colon);
        port = static_cast<uint16_t>(std::atoi(rest.substr(colon + 1).c_str()));
      }
      if (uri.rfind("ldapi://", 0) == 0) continue;
      deps.push_back({"ldap", uri, [host, port] { return ops::tcp_connect_check(host, port, milliseconds(2000)); }});
    }
  // DNS lists, when a profile's chain uses rbl: each zone's RFC 5782 test point, through the
  // zone's servers, on the monitor's thread (filters::rbl::zone_check is blocking and bounded).
  bool rbl_used = std::any_of(c.profiles.begin(), c.profiles.end(), [](const config::Profile& p) {
    return std::find(p.filters.begin(), p.filters.end(), "rbl") != p.filters.end();
  });
  if (rbl_used) {
    std::set<std::string> seen;
    auto rbl = std::make_shared<const config::Rbl>(c.filters.rbl);
    for (const auto& z : rbl->zones) {
      if (!seen.insert(z.zone).second) continue;  // one dependency per zone name
      deps.push_back({"dns", z.zone, [&z, rbl] { return filters::rbl::zone_check(z, *rbl); }});
    }
  }
  bool scans = false;
  for (const auto& p : c.profiles)
    scans = scans || std::find(p.filters.begin(), p.filters.end(), "clamav") != p.filters.end();
  if (auto engines = s.resources->clamav_engines(); scans && engines)
    deps.push_back({"clamav", c.filters.clamav.database_dir, [engines] { return filters::clamav::health(engines->status()); }});
  bool reads_images = false;
  for (const auto& p : c.profiles)
    reads_images = reads_images || std::find(p.filters.begin(), p.filters.end(), "ocr") != p.filters.end();
  if (reads_images) {
    filters::ocr::EngineSettings e{c.filters.ocr.language, c.filters.ocr.datapath, c.filters.ocr.page_seg_mode};
    deps.push_back({"ocr", c.filters.ocr.language, [e] {
                      std::string err = filters::ocr::check_language(e);
                      if (!err.empty()) return err;
                      return fmt::format("ok: tesseract {}, language {} in {}, {} engines", filters::ocr::tesseract_version(),
                                         e.language, filters::ocr::tessdata_dir(e), filters::ocr::engines_created());
                    }});
  }
  return deps;
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
  // Health: each I/O thread stamps its heartbeat; the admin thread reads them (ops/probe.h).
  using Clock = std::chrono::steady_clock;
  Clock::time_point started = Clock::now();
  std::vector<std::unique_ptr<std::atomic<int64_t>>> heartbeats;  // Clock ticks
  std::atomic<bool> listening{false};
  std::mutex reload_mu;
  std::string last_reload_error;
  std::unique_ptr<ops::AdminServer> admin;
  std::unique_ptr<ops::DependencyMonitor> monitor;
  // Worker-pool progress as seen by the admin thread (for "wedged").
  uint64_t seen_completed = 0;
  Clock::time_point progress_at = Clock::now();

  asio::awaitable<void> heartbeat(std::atomic<int64_t>& stamp) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    for (;;) {
      stamp.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
      t.expires_after(std::chrono::milliseconds(250));
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }

  static size_t count_open_fds() {
    size_t n = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (readdir(d)) ++n;
      closedir(d);
      n = n >= 3 ? n - 3 : 0;  // ".", ".." and the DIR's own fd
    }
    return n;
  }

  // Runs on the admin thread: reads only atomics and an atomically loaded snapshot.
  ops::Probe probe() {
    ops::Probe p;
    auto now = Clock::now();
    for (const auto& h : heartbeats)
      p.loop_lag.push_back(std::chrono::duration<double>(now - Clock::time_point(Clock::duration(h->load()))).count());
    p.uptime = std::chrono::duration<double>(now - started).count();
    p.draining = shared.draining.load();
    p.listening = listening.load() && !p.draining;
    p.open_fds = count_open_fds();
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) p.fd_limit = rl.rlim_cur;
    p.sessions = shared.sessions.load();
    p.transactions = shared.transactions.load();
    p.inflight_bytes = shared.budget.used();
    auto snap = current();
    p.config_hash = snap->config->hash;
    p.config_source = snap->config->source;
    for (size_t i = 0; i < snap->config->profiles.size() && i < shared.sessions_by_profile.size(); ++i)
      p.sessions_by_profile.emplace_back(snap->config->profiles[i].name, shared.sessions_by_profile[i].load());
    if (auto& pool = snap->resources->workers) {
      p.worker_threads = pool->threads();
      p.worker_queue = pool->pending();
      p.worker_queue_limit = pool->queue_limit();
      uint64_t done = pool->stats().completed;
      if (done != seen_completed || p.worker_queue == 0) {
        seen_completed = done;
        progress_at = now;
      }
      p.worker_idle_for = std::chrono::duration<double>(now - progress_at).count();
    }
    if (monitor) p.dependencies = monitor->statuses();
    std::lock_guard lock(reload_mu);
    p.last_reload_error = last_reload_error;
    return p;
  }

  bool start_admin() {
    const auto& a = current()->config->admin;
    if (a.host.empty()) return true;
    ops::Thresholds t{a.stall_after, a.fd_ratio, a.worker_wedged_after};
    monitor = std::make_unique<ops::DependencyMonitor>(
        std::chrono::milliseconds(static_cast<int64_t>(a.check_interval * 1000)), a.check_rise, a.check_fall);
    monitor->set(dependencies_of(*current()));
    monitor->start();
    admin = std::make_unique<ops::AdminServer>(a.host, a.port, t, [this] { return probe(); }, [this] { return reload_from_admin(); });
    std::string err;
    if (!admin->start(err)) {
      core::log().error("cannot listen on admin address {}:{}: {}", a.host, a.port, err);
      return false;
    }
    core::log().info("admin http on {}:{} (/livez /readyz /health /metrics)", a.host, a.port);
    return true;
  }

  // POST /reload: the reload runs on the main thread, like SIGHUP; the admin thread waits for it.
  std::string reload_from_admin() {
    auto done = std::make_shared<std::promise<std::string>>();
    auto answer = done->get_future();
    asio::post(main, [this, done] {
      reload();
      std::lock_guard lock(reload_mu);
      done->set_value(last_reload_error);
    });
    if (answer.wait_for(std::chrono::seconds(60)) != std::future_status::ready) return "reload did not finish in 60 s";
    return answer.get();
  }

  void set_reload_error(std::string e) {
    std::lock_guard lock(reload_mu);
    last_reload_error = std::move(e);
  }

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
    ops::ServiceManager::reloading();
    reload_config();
    ops::ServiceManager::ready("serving, config " + current()->config->hash.substr(0, 12));
  }

  // systemd's watchdog is fed only while every I/O event loop answers.
  asio::awaitable<void> feed_watchdog(std::chrono::microseconds every) {
    asio::steady_timer t(main);
    const auto stall = std::chrono::duration_cast<Clock::duration>(every * 2);
    for (;;) {
      bool all_alive = true;
      auto now = Clock::now();
      for (const auto& h : heartbeats) all_alive = all_alive && now - Clock::time_point(Clock::duration(h->load())) < stall;
      if (all_alive) ops::ServiceManager::watchdog_ping();
      t.expires_after(every);
      co_await t.async_wait(asio::use_awaitable);
    }
  }

  void reload_config() {
    auto cur = current();
    config::LoadResult r = config::load(cur->config->source);
    if (!r.config) {
      core::log().error("reload refused, keeping config {}: {}", cur->config->hash.substr(0, 12), r.error);
      set_reload_error(r.error);
      return;
    }
    SnapshotOrError snap = make_snapshot(r.config, cur->resources);
    if (!snap.snap) {
      core::log().error("reload refused, keeping config {}: {}", cur->config->hash.substr(0, 12), snap.error);
      set_reload_error(snap.error);
      return;
    }
    std::atomic_store(&snapshot, snap.snap);
    set_reload_error("");
    if (monitor) monitor->set(dependencies_of(*snap.snap));
    core::init_logging(r.config->log_level, r.config->log_syslog);
    core::log().info("stats {}", core::counters_line());
    core::log().info("reloaded config {} (listeners and connection limits apply at restart)", r.config->hash.substr(0, 12));
  }

  asio::awaitable<void> drain() {
    shared.draining = true;  // /readyz fails from now on, so the balancer stops sending
    listening = false;
    ops::ServiceManager::stopping();
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
    sigset_t control = control_signals();
    pthread_sigmask(SIG_UNBLOCK, &control, nullptr);  // this (the main) thread takes them from now on
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

void block_control_signals() {
  sigset_t control = control_signals();
  pthread_sigmask(SIG_BLOCK, &control, nullptr);
}

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
  for (unsigned i = 0; i < n; ++i) {
    s.heartbeats.push_back(std::make_unique<std::atomic<int64_t>>(Impl::Clock::now().time_since_epoch().count()));
    asio::co_spawn(*s.workers[i], s.heartbeat(*s.heartbeats.back()), asio::detached);
  }
  s.listening = true;
  if (!s.start_admin()) return 1;
  for (unsigned i = 0; i < n; ++i) s.threads.emplace_back([ctx = s.workers[i].get()] { ctx->run(); });
  for (size_t i = 0; i < s.acceptors.size(); ++i)
    asio::co_spawn(s.main, s.accept_loop(*s.acceptors[i], cfg->listeners[i]), asio::detached);
  asio::co_spawn(s.main, s.signals(), asio::detached);
  if (auto every = ops::ServiceManager::watchdog_interval()) asio::co_spawn(s.main, s.feed_watchdog(*every), asio::detached);
  core::log().info("mxfront started: {} I/O threads, config {}", n, cfg->hash.substr(0, 12));
  ops::ServiceManager::ready("serving, config " + cfg->hash.substr(0, 12));
  s.main.run();
  for (auto& w : s.workers) w->stop();
  for (auto& t : s.threads) t.join();
  if (s.admin) s.admin->stop();
  if (s.monitor) s.monitor->stop();
  core::log().info("stats {}", core::counters_line());
  core::log().info("mxfront stopped");
  return s.exit_code;
}

}  // namespace smtpd
