// filters::clamav — the process-wide libclamav engine: compiled from clamav.database_dir with the
// scan limits, held as shared_ptr<const Engine> and swapped whole when the signatures change.
// Contract:
//  * EngineHolder::create() compiles the first engine synchronously (start-up, --check-config):
//    an unusable directory is a config error with a clear message.
//  * current() is thread-safe; a scan keeps its Engine alive, so a swap never interrupts it, and an
//    old engine is freed when the last scan holding it ends.
//  * A background thread ("clamav-reload", never an I/O thread) fingerprints the directory every
//    reload_check (file names, sizes, mtimes); on a change, or on request_reload() (SIGHUP), it
//    compiles a new engine off to the side and swaps it in. A failed reload keeps the old engine
//    and logs an error (retried when the directory changes again, or on the next request).
//  * scan() blocks (tens of ms per MB): call it on the worker pool, never on an I/O thread.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "filters/clamav/settings.h"
#include "filters/filter.h"

struct cl_engine;

namespace filters::clamav {

struct TmpDir;  // the private CL_ENGINE_TMPDIR, removed when its last engine is gone

// One compiled engine and what it was built from.
struct Engine {
  cl_engine* engine = nullptr;
  unsigned signatures = 0;
  std::string database_dir;
  std::chrono::system_clock::time_point loaded_at;
  double load_seconds = 0;  // cl_load + cl_engine_compile
  uint64_t generation = 0;  // 1 for the first engine of a holder, +1 per swap
  std::shared_ptr<TmpDir> tmpdir;
  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();
};

struct Options {
  bool disable_cache = false;  // CL_ENGINE_DISABLE_CACHE: tests and benchmarks only
};

struct EngineOrError {
  std::shared_ptr<Engine> engine;
  std::string error;
};
// Compiles an engine (blocking). cl_init runs once per process on the first call.
EngineOrError compile(const clamav::Settings& c, std::shared_ptr<TmpDir> tmpdir, Options o = {});
// mkdtemp under `base` (empty: $TMPDIR or /tmp); null on failure, with the reason in *error.
std::shared_ptr<TmpDir> make_tmpdir(const std::string& base, std::string* error = nullptr);

struct ScanResult {
  enum class Kind { Clean, Virus, LimitExceeded, Cancelled, Error };
  Kind kind = Kind::Clean;
  std::string name;  // the signature (Virus, LimitExceeded: "Heuristics.Limits.Exceeded.*") or the error
};
// Scans a message from memory with mail parsing, every parser and the limits heuristic. A set
// `cancel` is checked before each (inner) file: the scan stops and reports Cancelled.
ScanResult scan(const Engine& e, std::string_view data, const Cancel* cancel = nullptr);

// For health checks and the log.
struct Status {
  std::string version;  // cl_retver()
  std::string database_dir;
  unsigned signatures = 0;
  std::chrono::system_clock::time_point loaded_at;
  double load_seconds = 0;
  double age_seconds = 0;  // since loaded_at
  uint64_t generation = 0;
  uint64_t reloads = 0;          // successful swaps after the first load
  uint64_t reload_failures = 0;
  std::string last_error;        // of the last failed reload; "" after a success
};

// A cheap check of new settings (a config reload): the directory exists and holds files. "" = ok.
std::string check_settings(const clamav::Settings& c);

// The engine's state as a dependency check (ops::DependencyMonitor): "ok: libclamav V, N signatures,
// engine G loaded S s ago", or, when the last reload failed (the older engine still scans), the error.
std::string health(const Status& st);

// A directory's signature files as (name, size, mtime ns), sorted. Empty when unreadable.
using Fingerprint = std::vector<std::tuple<std::string, uintmax_t, int64_t>>;
Fingerprint fingerprint(const std::string& dir);

class EngineHolder {
 public:
  struct Created;
  // Compiles the first engine, then starts the reload thread. Error text on failure.
  static Created create(const clamav::Settings& c, Options o = {});
  ~EngineHolder();  // stops and joins the reload thread
  EngineHolder(const EngineHolder&) = delete;
  EngineHolder& operator=(const EngineHolder&) = delete;

  std::shared_ptr<const Engine> current() const { return std::atomic_load(&engine_); }
  // A config reload: new settings (checked with check_settings()), then a reload in the
  // background. Returns the error, "" when accepted.
  std::string reconfigure(const clamav::Settings& c);
  void request_reload();  // wakes the reload thread (SIGHUP)
  // Compiles and swaps now, on the calling thread (the reload thread; tests). True on success.
  bool reload_now(const std::string& why);
  Status status() const;

 private:
  EngineHolder(const clamav::Settings& c, Options o, std::shared_ptr<TmpDir> t);
  void thread_main();
  bool load(const clamav::Settings& s, const Fingerprint& fp, const std::string& why);

  Options options_;
  std::shared_ptr<TmpDir> tmpdir_;
  std::shared_ptr<const Engine> engine_;  // read and swapped with std::atomic_load/store

  mutable std::mutex mu_;  // guards what follows
  std::condition_variable cv_;
  clamav::Settings settings_;
  bool stop_ = false, requested_ = false;
  Fingerprint loaded_fp_, failed_fp_;
  uint64_t generation_ = 0, reloads_ = 0, failures_ = 0;
  std::string last_error_;

  std::mutex load_mu_;  // one compile at a time
  std::thread thread_;
};

struct EngineHolder::Created {
  std::shared_ptr<EngineHolder> holder;
  std::string error;
};

// The scan limits reached as heuristics names start with this.
inline constexpr std::string_view kLimitsPrefix = "Heuristics.Limits.Exceeded";

// Whether a limit name is a size or time limit (Heuristics.Limits.Exceeded.MaxFileSize,
// .MaxScanSize, .MaxScanTime: a big attachment, a long scan), which clamav.on_limit may accept.
// Every other limit (MaxRecursion, MaxFiles, the mail parser's Email* limits, and any name a later
// libclamav adds) is structure the scanner did not see into: clamav.on_structure_limit applies.
bool is_size_limit(std::string_view name);

}  // namespace filters::clamav
