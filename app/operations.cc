// Operations: the admin listener and dependency monitor start once the server's listeners are
// bound; the probe turns the server's State into an ops::Probe on the admin thread.
#include "app/operations.h"

#include <atomic>

#include <dirent.h>
#include <sys/resource.h>

#include "app/generation.h"
#include "core/host_port.h"
#include "core/log.h"
#include "core/metrics.h"
#include "ops/admin_server.h"
#include "ops/dependencies.h"
#include "ops/service_manager.h"

namespace app {
namespace {

size_t count_open_fds() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
    n = n >= 3 ? n - 3 : 0;  // ".", ".." and the DIR's own fd
  }
  return n;
}

}  // namespace

struct Operations::Impl {
  using Clock = std::chrono::steady_clock;
  smtpd::Server* server = nullptr;
  // Set once the server has started (its State is complete and `monitor` is set): until then the
  // admin thread reports "starting" instead of asking the server.
  std::atomic<bool> started{false};
  std::unique_ptr<ops::AdminServer> admin;
  std::unique_ptr<ops::DependencyMonitor> monitor;
  // Worker-pool progress as seen by the admin thread (for "wedged").
  uint64_t seen_completed = 0;
  Clock::time_point progress_at = Clock::now();

  ~Impl() { stop(); }
  void stop() {
    if (admin) admin->stop();
    if (monitor) monitor->stop();
  }

  // Runs on the admin thread: the server's State is read from atomics and a snapshot pointer.
  ops::Probe probe() {
    if (!started.load(std::memory_order_acquire)) return {};  // /livez ok; /readyz: no listeners, no config
    smtpd::State st = server->state();
    ops::Probe p;
    p.loop_lag = st.loop_lag;
    p.uptime = st.uptime;
    p.draining = st.draining;
    p.listening = st.listening;
    p.open_fds = count_open_fds();
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) p.fd_limit = rl.rlim_cur;
    p.sessions = st.sessions;
    p.transactions = st.transactions;
    p.inflight_bytes = st.inflight_bytes;
    p.config_hash = st.snapshot->config->hash;
    p.config_source = st.snapshot->config->source;
    p.sessions_by_profile = st.sessions_by_profile;
    if (auto& pool = st.snapshot->resources->workers) {
      auto now = Clock::now();
      p.worker_threads = pool->threads();
      p.worker_queue = pool->pending();
      p.worker_queue_limit = pool->queue_limit();
      auto stats = pool->stats();
      p.worker_jobs_completed = stats.completed;
      p.worker_jobs_shed = stats.shed;
      uint64_t done = stats.completed;
      if (done != seen_completed || p.worker_queue == 0) {
        seen_completed = done;
        progress_at = now;
      }
      p.worker_idle_for = std::chrono::duration<double>(now - progress_at).count();
    }
    if (monitor) p.dependencies = monitor->statuses();
    p.last_reload_error = st.last_reload_error;
    return p;
  }

  bool open_admin(const config::Config& c) {
    const auto& a = c.admin;
    ops::Thresholds t{a.stall_after, a.fd_ratio, a.worker_wedged_after};
    admin = std::make_unique<ops::AdminServer>(a.host, a.port, t, [this] { return probe(); }, [this] {
      return started.load(std::memory_order_acquire) ? server->reload() : std::string("still starting");
    });
    std::string err;
    if (!admin->start(err)) {
      core::log().error("cannot listen on admin address {}: {}", core::HostPort{a.host, a.port}.str(), err);
      return false;
    }
    core::log().info("admin http on {} (/livez /readyz /health /metrics)", core::HostPort{a.host, a.port}.str());
    return true;
  }

  bool start() {
    smtpd::State st = server->state();
    const auto& a = st.snapshot->config->admin;
    if (a.host.empty()) return true;
    monitor = std::make_unique<ops::DependencyMonitor>(
        std::chrono::milliseconds(static_cast<int64_t>(a.check_interval * 1000)), a.check_rise, a.check_fall);
    monitor->set(dependencies_of(*st.snapshot));
    monitor->start();
    if (!admin && !open_admin(*st.snapshot->config)) return false;
    started.store(true, std::memory_order_release);
    return true;
  }
};

Operations::Operations() : impl_(std::make_unique<Impl>()) {
  core::describe({"qmqp_answers_total",
                  "Mailbox server answers by server and answer: K, Z, D, unavailable (no connection), "
                  "protocol_error (no or a broken answer)."});
  core::describe_histogram({"qmqp_duration_seconds", "Relay time of a message over QMQP, by the server that answered."});
}
Operations::~Operations() = default;

bool Operations::open_admin_early(const config::Config& c) { return c.admin.host.empty() || impl_->open_admin(c); }
void Operations::attach(smtpd::Server& server) { impl_->server = &server; }
void Operations::stop() { impl_->stop(); }

smtpd::Hooks Operations::hooks(std::function<smtpd::SnapshotOrError(const smtpd::Snapshot&)> rebuild) {
  smtpd::Hooks h;
  h.rebuild = std::move(rebuild);
  h.swapped = [this](const smtpd::Snapshot& now) {
    if (impl_->monitor) impl_->monitor->set(dependencies_of(now));
  };
  h.starting = [this] { return impl_->start(); };
  h.ready = [](const std::string& status) { ops::ServiceManager::ready(status); };
  h.reloading = [] { ops::ServiceManager::reloading(); };
  h.stopping = [] { ops::ServiceManager::stopping(); };
  h.watchdog_ping = [] { ops::ServiceManager::watchdog_ping(); };
  h.watchdog_interval = ops::ServiceManager::watchdog_interval();
  return h;
}

}  // namespace app
