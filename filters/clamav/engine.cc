// libclamav engine compile, scan from memory, and the holder that swaps engines when the
// signature directory changes (see engine.h for the contract).
#include "filters/clamav/engine.h"

#include <clamav.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>

#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "core/log.h"

namespace filters::clamav {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct TmpDir {
  std::string base;  // as configured (empty: $TMPDIR or /tmp)
  std::string path;
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string tmp_base(const std::string& configured) {
  if (!configured.empty()) return configured;
  const char* env = getenv("TMPDIR");
  return env && *env ? env : "/tmp";
}

std::shared_ptr<TmpDir> make_tmpdir(const std::string& base, std::string* error) {
  std::string templ = tmp_base(base) + "/mxfront-clamav.XXXXXX";
  if (!mkdtemp(templ.data())) {
    if (error) *error = fmt::format("cannot create a temporary directory in {}: {}", tmp_base(base), strerror(errno));
    return nullptr;
  }
  auto t = std::make_shared<TmpDir>();
  t->base = base;
  t->path = templ;
  return t;
}

Engine::~Engine() {
  if (engine) cl_engine_free(engine);
}

namespace {

// What a scan's callbacks share (the `context` of cl_scanmap_callback; libclamav also hands it
// to the message callback for messages written during the scan).
struct ScanContext {
  const Cancel* cancel = nullptr;
  std::string found;        // the last name reported to on_virus
  std::string first_error;  // libclamav said CL_MSG_ERROR during the scan (a scratch file it
  size_t errors = 0;        // could not write, memory ...): what it reports clean it did not see whole
};

// libclamav's own messages go to our log instead of stderr. During a scan an error is kept in
// the scan's context and logged once per scan (a full scratch directory yields one per line).
void on_message(enum cl_msg severity, const char* fullmsg, const char* msg, void* context) {
  std::string_view m(msg ? msg : "");
  while (!m.empty() && (m.back() == '\n' || m.back() == '\r')) m.remove_suffix(1);
  if (severity >= CL_MSG_ERROR) {
    auto* sc = static_cast<ScanContext*>(context);
    if (sc && sc->errors++ > 0) return;
    if (sc) sc->first_error = m;
    core::log().error("libclamav: {}", m);
  } else if (severity >= CL_MSG_WARN) {
    core::log().warn("libclamav: {}", m);
  } else {
    core::log().debug("libclamav: {}", m);
  }
}

// Called before each (inner) file: a cancelled scan stops here. CL_VIRUS, not CL_BREAK: a
// "skipped" file would be marked clean and could enter the clean-result cache.
cl_error_t on_pre_scan(int, const char*, void* context) {
  const auto* sc = static_cast<const ScanContext*>(context);
  return sc && sc->cancel && sc->cancel->cancelled() ? CL_VIRUS : CL_CLEAN;
}

// libclamav 1.4 leaves virname NULL for heuristic alerts (Heuristics.Limits.Exceeded.*) unless
// this callback is set: the name is taken from here then.
void on_virus(int, const char* virname, void* context) {
  if (auto* sc = static_cast<ScanContext*>(context); sc && virname) sc->found = virname;
}

std::string init_once() {
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    cl_set_clcb_msg(on_message);
    cl_error_t rc = cl_init(CL_INIT_DEFAULT);
    if (rc != CL_SUCCESS) error = fmt::format("cl_init: {}", cl_strerror(rc));
  });
  return error;
}

std::string set_num(cl_engine* e, cl_engine_field f, long long v, const char* what) {
  cl_error_t rc = cl_engine_set_num(e, f, v);
  return rc == CL_SUCCESS ? "" : fmt::format("{}: {}", what, cl_strerror(rc));
}

// Scan limits and the private temp dir, before cl_load.
std::string set_limits(cl_engine* e, const clamav::Settings& c, const std::string& tmpdir, Options o) {
  long long ms = static_cast<long long>(c.max_scan_time.count() * 1000);
  for (std::string err : {set_num(e, CL_ENGINE_MAX_SCANSIZE, c.max_scan_size, "max_scan_size"),
                          set_num(e, CL_ENGINE_MAX_FILESIZE, c.max_file_size, "max_file_size"),
                          set_num(e, CL_ENGINE_MAX_FILES, c.max_files, "max_files"),
                          set_num(e, CL_ENGINE_MAX_RECURSION, c.max_recursion, "max_recursion"),
                          set_num(e, CL_ENGINE_MAX_SCANTIME, ms > 0 ? ms : 1, "max_scan_time"),
                          set_num(e, CL_ENGINE_DISABLE_CACHE, o.disable_cache ? 1 : 0, "disable_cache")})
    if (!err.empty()) return err;
  cl_error_t rc = cl_engine_set_str(e, CL_ENGINE_TMPDIR, tmpdir.c_str());
  return rc == CL_SUCCESS ? "" : fmt::format("tmpdir: {}", cl_strerror(rc));
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

EngineOrError compile(const clamav::Settings& c, std::shared_ptr<TmpDir> tmpdir, Options o) {
  if (std::string err = init_once(); !err.empty()) return {nullptr, err};
  if (!tmpdir) return {nullptr, "cannot create a temporary directory for libclamav"};
  auto t0 = Clock::now();
  auto e = std::make_shared<Engine>();
  e->engine = cl_engine_new();
  if (!e->engine) return {nullptr, "cl_engine_new failed (out of memory?)"};
  e->database_dir = c.database_dir;
  e->tmpdir = tmpdir;
  if (std::string err = set_limits(e->engine, c, tmpdir->path, o); !err.empty()) return {nullptr, err};
  cl_engine_set_clcb_pre_scan(e->engine, on_pre_scan);
  cl_engine_set_clcb_virus_found(e->engine, on_virus);
  cl_error_t rc = cl_load(c.database_dir.c_str(), e->engine, &e->signatures, CL_DB_STDOPT);
  if (rc != CL_SUCCESS)
    return {nullptr, fmt::format("cannot load signatures from {}: {}", c.database_dir, cl_strerror(rc))};
  if (e->signatures == 0) return {nullptr, fmt::format("no signatures in {}", c.database_dir)};
  rc = cl_engine_compile(e->engine);
  if (rc != CL_SUCCESS) return {nullptr, fmt::format("cannot compile the engine from {}: {}", c.database_dir, cl_strerror(rc))};
  e->load_seconds = seconds_since(t0);
  e->loaded_at = std::chrono::system_clock::now();
  return {e, {}};
}

ScanResult scan(const Engine& e, std::string_view data, const Cancel* cancel) {
  cl_scan_options opts;
  std::memset(&opts, 0, sizeof opts);
  opts.general = CL_SCAN_GENERAL_HEURISTICS;
  opts.parse = ~0u;  // every parser, CL_SCAN_PARSE_MAIL and _ARCHIVE among them
  opts.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;
  cl_fmap_t* map = cl_fmap_open_memory(data.data(), data.size());
  if (!map) return {ScanResult::Kind::Error, "cl_fmap_open_memory failed"};
  const char* virname = nullptr;
  unsigned long scanned = 0;
  ScanContext sc{cancel, {}, {}, 0};
  cl_error_t rc = cl_scanmap_callback(map, "message", &virname, &scanned, e.engine, &opts, &sc);
  cl_fmap_close(map);
  if (cancel && cancel->cancelled()) return {ScanResult::Kind::Cancelled, "cancelled"};
  if (rc == CL_CLEAN && sc.errors == 0) return {};
  if (rc == CL_CLEAN)  // not seen whole: never a clean verdict (the filter's on_error decides)
    return {ScanResult::Kind::Error, fmt::format("incomplete scan, {} libclamav error(s), the first: {}", sc.errors, sc.first_error)};
  if (rc != CL_VIRUS) return {ScanResult::Kind::Error, cl_strerror(rc)};
  std::string name = virname ? virname : !sc.found.empty() ? sc.found : "unknown";
  if (name.rfind(kLimitsPrefix, 0) == 0) return {ScanResult::Kind::LimitExceeded, name};
  return {ScanResult::Kind::Virus, name};
}

Fingerprint fingerprint(const std::string& dir) {
  Fingerprint fp;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.' || !it->is_regular_file(ec)) continue;
    uintmax_t size = it->file_size(ec);
    auto mtime = it->last_write_time(ec).time_since_epoch();
    fp.emplace_back(name, size, std::chrono::duration_cast<std::chrono::nanoseconds>(mtime).count());
  }
  std::sort(fp.begin(), fp.end());
  return fp;
}

namespace {
// A cheap check of a directory before a background reload is promised (a config reload).
std::string check_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return fmt::format("clamav.database_dir {} is not a directory", dir);
  if (fingerprint(dir).empty()) return fmt::format("clamav.database_dir {} holds no signature files", dir);
  return {};
}

void log_loaded(const Engine& e, const std::string& why) {
  core::log().info("clamav: engine {} loaded ({}): {} signatures from {} in {:.1f} ms, libclamav {}", e.generation,
                   why, e.signatures, e.database_dir, e.load_seconds * 1e3, cl_retver());
}
}  // namespace

std::string check_settings(const clamav::Settings& c) {
  if (std::string err = check_dir(c.database_dir); !err.empty()) return err;
  std::string base = tmp_base(c.temp_dir);
  std::error_code ec;
  if (!fs::is_directory(base, ec)) return fmt::format("clamav.temp_dir {} is not a directory", base);
  if (access(base.c_str(), W_OK | X_OK) != 0) return fmt::format("clamav.temp_dir {}: {}", base, strerror(errno));
  return {};
}

bool is_size_limit(std::string_view name) {
  for (std::string_view limit : {".MaxFileSize", ".MaxScanSize", ".MaxScanTime"})
    if (name.starts_with(kLimitsPrefix) && name.substr(kLimitsPrefix.size()).starts_with(limit) &&
        (name.size() == kLimitsPrefix.size() + limit.size() || name[kLimitsPrefix.size() + limit.size()] == '.'))
      return true;
  return false;
}

std::string health(const Status& st) {
  std::string engine = fmt::format("engine {} loaded {:.0f} s ago", st.generation, st.age_seconds);
  if (!st.last_error.empty()) return fmt::format("last reload failed ({} still scans): {}", engine, st.last_error);
  return fmt::format("ok: libclamav {}, {} signatures, {}", st.version, st.signatures, engine);
}

EngineHolder::EngineHolder(const clamav::Settings& c, Options o, std::shared_ptr<TmpDir> t)
    : options_(o), tmpdir_(std::move(t)), settings_(c) {}

EngineHolder::Created EngineHolder::create(const clamav::Settings& c, Options o) {
  std::string err;
  auto tmp = make_tmpdir(c.temp_dir, &err);
  if (!tmp) return {nullptr, "clamav: " + err};
  std::shared_ptr<EngineHolder> h(new EngineHolder(c, o, std::move(tmp)));
  if (!h->load(c, fingerprint(c.database_dir), "start")) return {nullptr, "clamav: " + h->status().last_error};
  h->thread_ = std::thread([p = h.get()] { p->thread_main(); });
  return {h, {}};
}

EngineHolder::~EngineHolder() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string EngineHolder::reconfigure(const clamav::Settings& c) {
  if (std::string err = check_settings(c); !err.empty()) return err;
  {
    std::lock_guard lk(mu_);
    settings_ = c;
    requested_ = true;
  }
  cv_.notify_all();
  return {};
}

void EngineHolder::request_reload() {
  {
    std::lock_guard lk(mu_);
    requested_ = true;
  }
  cv_.notify_all();
}

bool EngineHolder::reload_now(const std::string& why) {
  clamav::Settings s;
  {
    std::lock_guard lk(mu_);
    s = settings_;
  }
  return load(s, fingerprint(s.database_dir), why);
}

// Compiles off to the side, then swaps. The fingerprint is taken BEFORE the load, so a file that
// changes during the load differs from it and triggers another reload at the next check.
bool EngineHolder::load(const clamav::Settings& s, const Fingerprint& fp, const std::string& why) {
  std::lock_guard load_lk(load_mu_);
  if (tmpdir_->base != s.temp_dir) {  // a reload moved it: the engines still scanning keep the old one
    std::string err;
    if (auto moved = make_tmpdir(s.temp_dir, &err))
      tmpdir_ = std::move(moved);
    else
      core::log().error("clamav: reload ({}) keeps the temporary directory {}: {}", why, tmpdir_->path, err);
  }
  EngineOrError r = compile(s, tmpdir_, options_);
  std::shared_ptr<const Engine> old;  // freed after the locks, unless scans still hold it
  std::lock_guard lk(mu_);
  if (!r.engine) {
    ++failures_;
    last_error_ = r.error;
    failed_fp_ = fp;
    if (generation_ > 0)
      core::log().error("clamav: reload ({}) failed, keeping engine {}: {}", why, generation_, r.error);
    return false;
  }
  r.engine->generation = ++generation_;
  if (generation_ > 1) ++reloads_;
  loaded_fp_ = fp;
  failed_fp_.clear();
  last_error_.clear();
  log_loaded(*r.engine, why);
  old = std::atomic_exchange(&engine_, std::shared_ptr<const Engine>(std::move(r.engine)));
  return true;
}

void EngineHolder::thread_main() {
  pthread_setname_np(pthread_self(), "clamav-reload");
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_lock lk(mu_);
  while (!stop_) {
    auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(settings_.reload_check);
    cv_.wait_for(lk, interval, [this] { return stop_ || requested_; });
    if (stop_) break;
    bool forced = std::exchange(requested_, false);
    clamav::Settings s = settings_;
    Fingerprint loaded = loaded_fp_, failed = failed_fp_;
    lk.unlock();
    Fingerprint fp = fingerprint(s.database_dir);
    if (forced)
      load(s, fp, "reload requested");
    else if (fp != loaded && fp != failed)
      load(s, fp, "signatures changed");
    lk.lock();
  }
}

Status EngineHolder::status() const {
  Status st;
  st.version = cl_retver();
  if (auto e = current()) {
    st.database_dir = e->database_dir;
    st.signatures = e->signatures;
    st.loaded_at = e->loaded_at;
    st.load_seconds = e->load_seconds;
    st.generation = e->generation;
    st.age_seconds = std::chrono::duration<double>(std::chrono::system_clock::now() - e->loaded_at).count();
  }
  std::lock_guard lk(mu_);
  st.reloads = reloads_;
  st.reload_failures = failures_;
  st.last_error = last_error_;
  return st;
}

}  // namespace filters::clamav
