// The monitor thread and the TCP probe.
#include "ops/dependencies.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace ops {

DependencyMonitor::DependencyMonitor(std::chrono::milliseconds interval, unsigned rise, unsigned fall)
    : interval_(interval), rise_(rise), fall_(fall) {}

DependencyMonitor::~DependencyMonitor() { stop(); }

void DependencyMonitor::set(std::vector<Dependency> deps) {
  std::lock_guard lock(mu_);
  std::vector<DependencyStatus> next;
  for (const auto& d : deps) {
    DependencyStatus s{d.kind, d.name};
    for (const auto& old : status_)
      if (old.kind == d.kind && old.name == d.name) s = old;
    next.push_back(s);
  }
  deps_ = std::move(deps);
  status_ = std::move(next);
}

void DependencyMonitor::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "dep-checks");
    loop();
  });
}

void DependencyMonitor::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<DependencyStatus> DependencyMonitor::statuses() const {
  std::lock_guard lock(mu_);
  std::vector<DependencyStatus> out = status_;
  for (size_t i = 0; i < out.size() && i < deps_.size(); ++i)  // status_[i] describes deps_[i] (set())
    if (deps_[i].passive) {
      out[i].passive_error = deps_[i].passive();
      if (!out[i].passive_error.empty()) out[i].up = false;
    }
  return out;
}

bool DependencyMonitor::due(const Dependency& d) const {
  if (d.check_every.count() <= 0) return true;
  std::lock_guard lock(mu_);
  for (const auto& s : status_)
    if (s.kind == d.kind && s.name == d.name)
      return !s.checked || std::chrono::steady_clock::now() - s.last_check >= d.check_every;
  return true;
}

void DependencyMonitor::run_once() {
  std::vector<Dependency> deps;
  {
    std::lock_guard lock(mu_);
    deps = deps_;
  }
  for (const auto& d : deps) {
    if (!d.check || !due(d)) continue;
    auto t0 = std::chrono::steady_clock::now();
    std::string err = d.check();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::lock_guard lock(mu_);
    for (auto& s : status_) {
      if (s.kind != d.kind || s.name != d.name) continue;
      s.checked = true;
      s.last_check = t0;
      s.last_latency_ms = ms;
      bool ok = err.empty() || err.rfind("ok: ", 0) == 0;
      bool was_up = s.up;
      if (ok) {
        s.detail = err.empty() ? "" : err.substr(4);
        s.consecutive_failures = 0;
        if (++s.consecutive_successes >= rise_) s.up = true;
      } else {
        s.last_error = err;
        s.consecutive_successes = 0;
        if (++s.consecutive_failures >= fall_) s.up = false;
      }
      if (s.up != was_up) {  // a transition: logged once
        if (s.up) core::log().info("dependency {} {} is up", s.kind, s.name);
        else core::log().warn("dependency {} {} is down: {}", s.kind, s.name, s.last_error);
      }
    }
  }
}

void DependencyMonitor::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    run_once();
    lock.lock();
    cv_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

std::string tcp_connect_check(const std::string& host, uint16_t port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  // Numeric hosts resolve without DNS; a name is resolved here, on the monitor thread.
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return std::string("resolve: ") + gai_strerror(rc);
  std::string err = "no address";
  for (addrinfo* a = res; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = poll(&p, 1, static_cast<int>(timeout.count()));
      if (rc == 0) {
        err = "connect timeout";
        rc = -1;
      } else if (rc > 0) {
        int so = 0;
        socklen_t len = sizeof so;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
        rc = so ? -1 : 0;
        if (so) err = std::strerror(so);
      }
    } else if (rc != 0) {
      err = std::strerror(errno);
    }
    close(fd);
    if (rc == 0) {
      err.clear();
      break;
    }
  }
  freeaddrinfo(res);
  return err;
}

}  // namespace ops
