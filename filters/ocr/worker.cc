// The OCR helper process (worker_main) and the server's side of it (WorkerProcs): spawning,
// limits, the framed protocol, deadlines and kills. See worker.h.
#include "filters/ocr/worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "core/log.h"
#include "core/metrics.h"
#include "filters/ocr/image.h"
#include "filters/ocr/pdf.h"

extern char** environ;

namespace filters::ocr {
namespace {
using Clock = std::chrono::steady_clock;

constexpr uint32_t kMaxFrame = 1u << 30;         // a part's octets (the message size bounds them first)
constexpr uint32_t kMaxReply = 64u << 20;        // what a helper may send in one frame
constexpr auto kTick = std::chrono::milliseconds(20);

// ---- encoding ------------------------------------------------------------------------------
struct Out {
  std::string b;
  Out& u8(uint8_t v) { b.push_back(static_cast<char>(v)); return *this; }
  Out& u32(uint32_t v) {
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  Out& u64(uint64_t v) { return u32(static_cast<uint32_t>(v >> 32)).u32(static_cast<uint32_t>(v)); }
  Out& str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    b.append(s);
    return *this;
  }
};

struct In {
  std::string_view s;
  bool ok = true;
  bool take(size_t n) {
    if (!ok || s.size() < n) return ok = false;
    return true;
  }
  uint8_t u8() {
    if (!take(1)) return 0;
    uint8_t v = static_cast<uint8_t>(s[0]);
    s.remove_prefix(1);
    return v;
  }
  uint32_t u32() {
    if (!take(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
    s.remove_prefix(4);
    return v;
  }
  uint64_t u64() {
    uint64_t hi = u32();
    return (hi << 32) | u32();
  }
  std::string_view view() {
    uint32_t n = u32();
    if (!take(n)) return {};
    std::string_view v = s.substr(0, n);
    s.remove_prefix(n);
    return v;
  }
  std::string str() { return std::string(view()); }
};

std::string frame(char type, const Out& body) {
  Out f;
  f.u32(static_cast<uint32_t>(body.b.size() + 1));
  f.b.push_back(type);
  f.b += body.b;
  return std::move(f.b);
}

void put_job(Out& o, const PartJob& j) {
  o.u8(static_cast<uint8_t>(j.kind)).u64(j.max_pixels).u64(j.max_decoded_bytes).u32(j.min_width).u32(j.min_height);
  o.u32(j.max_frames).u32(j.pdf_max_pages).u32(j.pdf_dpi).u32(j.max_views).u32(j.upscale_below);
  o.u8(j.keys).u8(j.perceptual).u64(static_cast<uint64_t>(j.image_timeout_ms)).u64(static_cast<uint64_t>(j.budget_ms));
  o.str(j.engine.language).str(j.engine.datapath).str(j.engine.page_seg_mode);
}

PartJob get_job(In& in) {
  PartJob j;
  j.kind = in.u8() == 2 ? PartKind::Pdf : PartKind::Image;
  j.max_pixels = in.u64();
  j.max_decoded_bytes = in.u64();
  j.min_width = in.u32();
  j.min_height = in.u32();
  j.max_frames = in.u32();
  j.pdf_max_pages = in.u32();
  j.pdf_dpi = in.u32();
  j.max_views = in.u32();
  j.upscale_below = in.u32();
  j.keys = in.u8() != 0;
  j.perceptual = in.u8() != 0;
  j.image_timeout_ms = static_cast<int64_t>(in.u64());
  j.budget_ms = static_cast<int64_t>(in.u64());
  j.engine.language = in.str();
  j.engine.datapath = in.str();
  j.engine.page_seg_mode = in.str();
  return j;
}

void put_header(Out& o, const PartHeader& h) {
  o.u8(h.image_status).str(h.detail).u64(h.decoded_bytes).u8(h.pdf_status).str(h.pdf_text).u32(h.views).u32(h.over_limit);
}

PartHeader get_header(In& in) {
  PartHeader h;
  h.image_status = in.u8();
  h.detail = in.str();
  h.decoded_bytes = in.u64();
  h.pdf_status = in.u8();
  h.pdf_text = in.str();
  h.views = in.u32();
  h.over_limit = in.u32();
  return h;
}

// ---- the helper's side: blocking I/O on its socket ------------------------------------------
bool write_all_blocking(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool read_exact_blocking(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// A frame from the server, or false at EOF or on garbage.
bool read_frame_blocking(int fd, char& type, std::string& body) {
  char len[4];
  if (!read_exact_blocking(fd, len, 4)) return false;
  In in{std::string_view(len, 4)};
  uint32_t n = in.u32();
  if (n == 0 || n > kMaxFrame) return false;
  body.resize(n - 1);
  if (!read_exact_blocking(fd, &type, 1)) return false;
  return read_exact_blocking(fd, body.data(), body.size());
}

[[noreturn]] void leave(int code) { ::_exit(code); }  // no atexit handlers (nor LeakSanitizer's)

class FrameSink final : public PartSink {
 public:
  explicit FrameSink(int fd) : fd_(fd) {}
  void decoded(const PartHeader& h) override {
    Out o;
    put_header(o, h);
    send('D', o);
  }
  bool cached(const std::string& key, const std::string& pkey) override {
    Out o;
    o.str(key).str(pkey);
    send('V', o);
    char type = 0;
    std::string body;
    if (!read_frame_blocking(fd_, type, body) || type != 'C' || body.size() != 1) leave(4);
    return body[0] != 0;
  }
  void read(const std::string& text, bool complete) override {
    Out o;
    o.str(text).u8(complete);
    send('T', o);
  }
  void send(char type, const Out& o) {
    if (!write_all_blocking(fd_, frame(type, o))) leave(4);
  }

 private:
  int fd_;
};

// RLIMIT_CPU (soft) = CPU used so far + the part's budget + 2 s: SIGXCPU ends a helper that the
// server somehow stopped watching. The hard limit stays where it was, so the next part can raise it.
void limit_cpu(int64_t budget_ms) {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  rlim_t used = static_cast<rlim_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1);
  rlimit rl{};
  getrlimit(RLIMIT_CPU, &rl);
  rlim_t want = used + static_cast<rlim_t>(budget_ms / 1000) + 2;
  if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) want = rl.rlim_max;
  rl.rlim_cur = want;
  setrlimit(RLIMIT_CPU, &rl);
}

// ---- the server's side: non-blocking I/O with a deadline and a cancel flag -------------------
enum class Io { Ok, Timeout, Cancelled, Closed };

Io wait_fd(int fd, short events, Clock::time_point deadline, const std::atomic<bool>* cancel) {
  for (;;) {
    if (cancel && cancel->load(std::memory_order_relaxed)) return Io::Cancelled;
    auto now = Clock::now();
    if (now >= deadline) return Io::Timeout;
    auto wait = std::min<Clock::duration>(kTick, deadline - now);
    pollfd p{fd, events, 0};
    int ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
    int r = ::poll(&p, 1, ms);
    if (r < 0 && errno != EINTR) return Io::Closed;
    if (r > 0) {
      if (p.revents & (POLLERR | POLLNVAL)) return Io::Closed;
      return Io::Ok;  // readable, writable or hung up: the call that follows tells which
    }
  }
}

Io send_all(int fd, std::string_view data, Clock::time_point deadline, const std::atomic<bool>* cancel) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (Io w = wait_fd(fd, POLLOUT, deadline, cancel); w != Io::Ok) return w;
      continue;
    }
    return Io::Closed;
  }
  return Io::Ok;
}

Io recv_exact(int fd, char* p, size_t n, Clock::time_point deadline, const std::atomic<bool>* cancel) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, MSG_DONTWAIT);
    if (r > 0) {
      p += r;
      n -= static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return Io::Closed;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      if (Io w = wait_fd(fd, POLLIN, deadline, cancel); w != Io::Ok) return w;
      continue;
    }
    return Io::Closed;
  }
  return Io::Ok;
}

Io recv_frame(int fd, char& type, std::string& body, Clock::time_point deadline, const std::atomic<bool>* cancel) {
  char len[4];
  if (Io r = recv_exact(fd, len, 4, deadline, cancel); r != Io::Ok) return r;
  In in{std::string_view(len, 4)};
  uint32_t n = in.u32();
  if (n == 0 || n > kMaxReply) return Io::Closed;
  if (Io r = recv_exact(fd, &type, 1, deadline, cancel); r != Io::Ok) return r;
  body.resize(n - 1);
  return recv_exact(fd, body.data(), body.size(), deadline, cancel);
}

// ocr_workers_total{event=...}
void count_event(std::string_view event) {
  static std::mutex mu;
  static std::map<std::string, core::LabeledCounter*, std::less<>> counters;
  core::LabeledCounter* c;
  {
    std::lock_guard lk(mu);
    auto it = counters.find(event);
    if (it == counters.end())
      it = counters.emplace(std::string(event), core::labeled_counter("ocr_workers_total", fmt::format("event=\"{}\"", event))).first;
    c = it->second;
  }
  core::count(c);
}

std::string describe_status(int st) {
  if (WIFSIGNALED(st)) {
    int sig = WTERMSIG(st);
    return fmt::format("killed by signal {} ({}){}", sig, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                       sig == SIGXCPU ? ": CPU limit" : "");
  }
  if (WIFEXITED(st)) return fmt::format("exited with code {}", WEXITSTATUS(st));
  return "ended";
}

}  // namespace

bool sanitizer_build() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

// ---- worker_main ------------------------------------------------------------------------------
int worker_main(int argc, char** argv) {
  // FD MEMORY_LIMIT PARENT_PID LANGUAGE DATAPATH
  if (argc < 5) {
    std::fprintf(stderr, "mxfront --ocr-worker: started by hand? It is started by the ocr filter.\n");
    return 2;
  }
  int fd = std::atoi(argv[0]);
  uint64_t memory_limit = std::strtoull(argv[1], nullptr, 10);
  pid_t parent = static_cast<pid_t>(std::atol(argv[2]));
  EngineSettings engine{argv[3], argv[4], "auto"};
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 1;  // the server died before the line above
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  rlimit core_limit{0, 0};
  setrlimit(RLIMIT_CORE, &core_limit);
  prctl(PR_SET_DUMPABLE, 0);
  if (memory_limit > 0 && !sanitizer_build()) {
    rlimit as{static_cast<rlim_t>(memory_limit), static_cast<rlim_t>(memory_limit)};
    setrlimit(RLIMIT_AS, &as);
  }
  if (fd < 3) return 2;
  close_range(static_cast<unsigned>(fd) + 1, ~0u, 0);  // posix_spawn closed them already: belt and braces
  image::quiet_leptonica();
  pdf::quiet_poppler();
  warm_up(engine);  // the model is loaded while the server has nothing for this helper yet
  FrameSink sink(fd);
  std::string body;
  for (;;) {
    char type = 0;
    if (!read_frame_blocking(fd, type, body)) leave(0);  // the server closed the socket (or died)
    if (type != 'J') leave(3);
    In in{body};
    PartJob job = get_job(in);
    std::string_view bytes = in.view();
    if (!in.ok) leave(3);
    limit_cpu(job.budget_ms);
    try {
      read_part(bytes, job, sink, nullptr);
      sink.send('E', Out{});
    } catch (const std::exception& e) {  // std::bad_alloc at the memory limit, most likely
      Out o;
      o.str(e.what());
      sink.send('X', o);
      leave(3);
    }
  }
}

// ---- WorkerProcs --------------------------------------------------------------------------------
std::string_view WorkerProcs::end_name(End e) {
  switch (e) {
    case End::Done: return "done";
    case End::Deadline: return "deadline";
    case End::Cancelled: return "cancelled";
    case End::Crashed: return "crashed";
  }
  return "?";
}

WorkerProcs::WorkerProcs(size_t slots, Options o) : options_(std::move(o)), slots_(slots ? slots : 1) {}

WorkerProcs::~WorkerProcs() {
  for (auto& s : slots_)
    if (s.pid > 0) kill_and_reap(s, "");
}

void WorkerProcs::configure(Options o) {
  std::lock_guard lk(mu_);
  options_ = std::move(o);
}

WorkerProcs::Options WorkerProcs::options() const {
  std::lock_guard lk(mu_);
  return options_;
}

WorkerProcs::Stats WorkerProcs::stats() const {
  Stats st{spawned_.load(), killed_deadline_.load(), killed_cancel_.load(), crashed_.load(), spawn_failed_.load(), 0};
  std::lock_guard lk(mu_);
  for (const auto& s : slots_) st.alive += s.pid > 0;
  return st;
}

std::vector<int> WorkerProcs::pids() const {
  std::lock_guard lk(mu_);
  std::vector<int> out;
  for (const auto& s : slots_)
    if (s.pid > 0) out.push_back(s.pid);
  return out;
}

bool WorkerProcs::spawn(Slot& s, std::string& error) {
  Options o = options();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    error = fmt::format("socketpair: {}", std::strerror(errno));
    return false;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 3);  // glibc clears FD_CLOEXEC, also when sv[1] is 3
  posix_spawn_file_actions_addclosefrom_np(&fa, 4);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);     // OCR threads block every signal: the helper must not
  posix_spawnattr_setsigdefault(&at, &all);   // and the server ignores SIGPIPE: defaults for the helper
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::string limit = std::to_string(o.memory_limit), ppid = std::to_string(::getpid());
  std::vector<char*> argv{o.exe.data(), const_cast<char*>("--ocr-worker"), const_cast<char*>("3"), limit.data(),
                          ppid.data(), o.engine.language.data(), o.engine.datapath.data(), nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, o.exe.c_str(), &fa, &at, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  ::close(sv[1]);
  if (rc != 0) {
    ::close(sv[0]);
    error = fmt::format("cannot start {} --ocr-worker: {}", o.exe, std::strerror(rc));
    spawn_failed_.fetch_add(1);
    count_event("spawn_failed");
    core::log().error("ocr: {}", error);
    return false;
  }
  ::fcntl(sv[0], F_SETFL, ::fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  {
    std::lock_guard lk(mu_);
    s.pid = pid;
    s.fd = sv[0];
    s.parts = 0;
    s.memory_limit = o.memory_limit;
    s.engine = o.engine;
  }
  spawned_.fetch_add(1);
  count_event("spawned");
  core::log().debug("ocr: worker pid {} started", pid);
  return true;
}

void WorkerProcs::kill_and_reap(Slot& s, std::string_view why) {
  ::kill(s.pid, SIGKILL);
  int st = 0;
  while (::waitpid(s.pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!why.empty()) core::log().warn("ocr: worker pid {} killed: {}", s.pid, why);
  std::lock_guard lk(mu_);
  ::close(s.fd);
  s.pid = -1;
  s.fd = -1;
}

// The helper closed its socket: it is exiting (or has); collect it and say how it ended.
void WorkerProcs::reap(Slot& s, std::string& how) {
  int st = 0;
  pid_t r = 0;
  for (int i = 0; i < 50 && (r = ::waitpid(s.pid, &st, WNOHANG)) == 0; ++i) ::usleep(10'000);
  if (r == 0) {  // still there after 0.5 s: it will not be
    ::kill(s.pid, SIGKILL);
    while ((r = ::waitpid(s.pid, &st, 0)) < 0 && errno == EINTR) {
    }
  }
  how = r > 0 ? describe_status(st) : "gone";
  std::lock_guard lk(mu_);
  ::close(s.fd);
  s.pid = -1;
  s.fd = -1;
}

WorkerProcs::End WorkerProcs::run_part(size_t slot, std::string_view bytes, const PartJob& job, PartSink& sink,
                                       Clock::time_point deadline, const std::atomic<bool>* cancel, std::string& detail) {
  Slot& s = slots_[slot % slots_.size()];
  {
    Options o = options();
    if (s.pid > 0 && (s.memory_limit != o.memory_limit || s.engine.language != o.engine.language ||
                      s.engine.datapath != o.engine.datapath || (o.max_parts && s.parts >= o.max_parts))) {
      kill_and_reap(s, "");  // idle: replaced by one with the current settings
      count_event("retired");
    }
  }
  if (s.pid <= 0 && !spawn(s, detail)) return End::Crashed;
  ++s.parts;
  const int pid = s.pid;
  // A helper killed or dead is replaced at once, so that the next part finds its model loaded.
  auto replace = [&] {
    std::string ignored;
    spawn(s, ignored);
  };
  auto fail_once = [&](Io io, std::string_view step) -> End {
    if (io == Io::Cancelled) {
      kill_and_reap(s, "");
      killed_cancel_.fetch_add(1);
      count_event("killed_cancelled");
      detail = fmt::format("worker pid {} killed while {}: check cancelled", pid, step);
      core::log().info("ocr: {}", detail);
      return End::Cancelled;
    }
    if (io == Io::Timeout) {
      kill_and_reap(s, "");
      killed_deadline_.fetch_add(1);
      count_event("killed_deadline");
      detail = fmt::format("worker pid {} killed at the deadline while {}", pid, step);
      core::log().warn("ocr: {}", detail);
      return End::Deadline;
    }
    std::string how;
    reap(s, how);
    crashed_.fetch_add(1);
    count_event("crashed");
    detail = fmt::format("worker pid {} died while {}: {}", pid, step, how);
    core::log().warn("ocr: {}", detail);
    return End::Crashed;
  };
  auto fail = [&](Io io, std::string_view step) -> End {
    End e = fail_once(io, step);
    replace();
    return e;
  };
  const auto hard = deadline + kGrace;
  Out request;
  put_job(request, job);
  request.str(bytes);
  if (Io r = send_all(s.fd, frame('J', request), hard, cancel); r != Io::Ok) return fail(r, "receiving the part");
  bool reading = false;  // Tesseract is reading a view
  auto view_deadline = hard;
  std::string body;
  for (;;) {
    char type = 0;
    if (Io r = recv_frame(s.fd, type, body, reading ? view_deadline : hard, cancel); r != Io::Ok)
      return fail(r, reading ? "reading a view" : "decoding");
    In in{body};
    switch (type) {
      case 'D': {
        PartHeader h = get_header(in);
        if (!in.ok) return fail(Io::Closed, "decoding (bad frame)");
        sink.decoded(h);
        break;
      }
      case 'V': {
        std::string key = in.str(), pkey = in.str();
        if (!in.ok) return fail(Io::Closed, "decoding (bad frame)");
        bool hit = sink.cached(key, pkey);
        Out a;
        a.u8(hit);
        if (Io r = send_all(s.fd, frame('C', a), hard, cancel); r != Io::Ok) return fail(r, "decoding");
        if (!hit) {
          reading = true;
          view_deadline = std::min(Clock::now() + std::chrono::milliseconds(job.image_timeout_ms), deadline) + kGrace;
        }
        break;
      }
      case 'T': {
        std::string text = in.str();
        bool complete = in.u8() != 0;
        if (!in.ok) return fail(Io::Closed, "reading a view (bad frame)");
        reading = false;
        sink.read(text, complete);
        break;
      }
      case 'E':
        return End::Done;
      case 'X': {
        std::string what = in.str();
        std::string how;
        reap(s, how);
        crashed_.fetch_add(1);
        count_event("crashed");
        detail = fmt::format("worker pid {} failed: {} ({})", pid, what, how);
        core::log().warn("ocr: {}", detail);
        replace();
        return End::Crashed;
      }
      default:
        return fail(Io::Closed, "talking (unknown frame)");
    }
  }
}

}  // namespace filters::ocr
