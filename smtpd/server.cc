// Server: builds the I/O threads and acceptors, spreads accepted sockets over the threads,
// handles SIGTERM/SIGINT (drain, then exit 0) and SIGHUP (a reload through Hooks::rebuild).
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

#include "core/log.h"
#include "core/metrics.h"
#include "smtpd/session.h"

#include <future>
#include <mutex>

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

}  // namespace

struct Server::Impl {
  Impl(std::shared_ptr<const Snapshot> s, Hooks h) : snapshot(std::move(s)), hooks(std::move(h)), shared(*snapshot->config, snapshot->farm_counts) {}

  std::shared_ptr<const Snapshot> snapshot;  // read and swapped with std::atomic_load/store
  Hooks hooks;
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
  mutable std::mutex reload_mu;
  std::string last_reload_error;

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

  State state() const {
    State st;
    auto now = Clock::now();
    for (const auto& h : heartbeats)
      st.loop_lag.push_back(std::chrono::duration<double>(now - Clock::time_point(Clock::duration(h->load()))).count());
    st.uptime = std::chrono::duration<double>(now - started).count();
    st.draining = shared.draining.load();
    st.listening = listening.load() && !st.draining;
    st.sessions = shared.sessions.load();
    st.transactions = shared.transactions.load();
    st.inflight_bytes = shared.budget.used();
    st.snapshot = current();
    const auto& profiles = st.snapshot->config->profiles;
    for (size_t i = 0; i < profiles.size() && i < shared.sessions_by_profile.size(); ++i)
      st.sessions_by_profile.emplace_back(profiles[i].name, shared.sessions_by_profile[i].load());
    std::lock_guard lock(reload_mu);
    st.last_reload_error = last_reload_error;
    return st;
  }

  // From any thread: the reload runs on the main thread, like SIGHUP; this thread waits for it.
  std::string reload_and_wait() {
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
    if (hooks.reloading) hooks.reloading();
    reload_config();
    if (hooks.ready) hooks.ready("serving, config " + current()->config->hash.substr(0, 12));
  }

  // systemd's watchdog is fed only while every I/O event loop answers.
  asio::awaitable<void> feed_watchdog(std::chrono::microseconds every) {
    asio::steady_timer t(main);
    const auto stall = std::chrono::duration_cast<Clock::duration>(every * 2);
    for (;;) {
      bool all_alive = true;
      auto now = Clock::now();
      for (const auto& h : heartbeats) all_alive = all_alive && now - Clock::time_point(Clock::duration(h->load())) < stall;
      if (all_alive && hooks.watchdog_ping) hooks.watchdog_ping();
      t.expires_after(every);
      co_await t.async_wait(asio::use_awaitable);
    }
  }

  void reload_config() {
    auto cur = current();
    if (!hooks.rebuild) return set_reload_error("");
    SnapshotOrError next = hooks.rebuild(*cur);
    if (!next.snap) {
      core::log().error("reload refused, keeping config {}: {}", cur->config->hash.substr(0, 12), next.error);
      set_reload_error(next.error);
      return;
    }
    std::atomic_store(&snapshot, next.snap);
    set_reload_error("");
    if (hooks.swapped) hooks.swapped(*next.snap);
    core::log().info("stats {}", core::counters_line());
    core::log().info("reloaded config {} (listeners and connection limits apply at restart)", next.snap->config->hash.substr(0, 12));
  }

  asio::awaitable<void> drain() {
    shared.draining = true;  // /readyz fails from now on, so the balancer stops sending
    listening = false;
    if (hooks.stopping) hooks.stopping();
    for (auto& a : acceptors) {
      boost::system::error_code ec;
      a->close(ec);
    }
    shared.drain_wakeups.wake_all();  // idle sessions close at once; transactions may finish
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

Server::Server(std::shared_ptr<const Snapshot> s, Hooks hooks) : impl_(std::make_unique<Impl>(std::move(s), std::move(hooks))) {}
Server::~Server() = default;
std::string Server::reload() { return impl_->reload_and_wait(); }
State Server::state() const { return impl_->state(); }

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
  for (unsigned i = 0; i < n; ++i) {
    s.heartbeats.push_back(std::make_unique<std::atomic<int64_t>>(Impl::Clock::now().time_since_epoch().count()));
    asio::co_spawn(*s.workers[i], s.heartbeat(*s.heartbeats.back()), asio::detached);
  }
  // The admin endpoints first (State is complete from here on): a probe that finds the SMTP port
  // open also finds them, and /readyz says "not listening" until the listeners are open.
  if (s.hooks.starting && !s.hooks.starting()) return 1;
  if (!s.open_listeners()) return 1;
  s.listening = true;
  for (unsigned i = 0; i < n; ++i) s.threads.emplace_back([ctx = s.workers[i].get()] { ctx->run(); });
  for (size_t i = 0; i < s.acceptors.size(); ++i)
    asio::co_spawn(s.main, s.accept_loop(*s.acceptors[i], cfg->listeners[i]), asio::detached);
  asio::co_spawn(s.main, s.signals(), asio::detached);
  if (auto every = s.hooks.watchdog_interval) asio::co_spawn(s.main, s.feed_watchdog(*every), asio::detached);
  core::log().info("mxfront started: {} I/O threads, config {}", n, cfg->hash.substr(0, 12));
  if (s.hooks.ready) s.hooks.ready("serving, config " + cfg->hash.substr(0, 12));
  s.main.run();
  for (auto& w : s.workers) w->stop();
  for (auto& t : s.threads) t.join();
  core::log().info("stats {}", core::counters_line());
  core::log().info("mxfront stopped");
  return s.exit_code;
}

}  // namespace smtpd
