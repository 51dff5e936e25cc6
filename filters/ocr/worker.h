// OCR worker processes: Tesseract, Leptonica, giflib and poppler run in helper processes that the
// server kills at a job's deadline, so a hostile picture or PDF costs at most its time (plus
// kGrace) of CPU, a parser bug costs a helper process and never the server, and the process that
// parses hostile files holds none of the server's sockets.
//
// The helper is the server's own binary re-executed (/proc/self/exe --ocr-worker FD LIMIT PPID
// LANG DATAPATH, app/main.cc): one file to deploy. It is started with posix_spawn (the server is
// multithreaded: nothing runs between fork and exec), every fd but its socket closed, signals at
// their defaults; it then sets its own limits before reading anything: RLIMIT_AS = memory_limit
// (skipped in sanitizer builds, whose shadow memory needs terabytes of address space), RLIMIT_CORE
// 0, not dumpable, PR_SET_PDEATHSIG SIGKILL; before each part RLIMIT_CPU (soft) = its CPU so far +
// the part's budget + 2 s (a backstop should the server stop watching). It loads the Tesseract
// model once at start and serves parts one at a time, until the server closes the socket.
//
// Protocol (socketpair, SOCK_STREAM): frames of u32 length (big-endian) + u8 type + payload.
//   server -> worker  'J' a part: PartJob + the part's octets;  'C' the answer to 'V': u8 cached
//   worker -> server  'D' PartHeader;  'V' a view's cache keys;  'T' a view's text + complete;
//                     'E' part done;  'X' error text (the worker then exits)
//
// WorkerProcs (server side) keeps one helper per slot (slot = the index of the OCR thread that
// drives it, so no two threads share a helper); run_part() sends a part and answers the helper
// until the part is done, waiting with poll() on the calling thread (an OCR thread, never an I/O
// thread) in ticks of 20 ms to see `cancel`. Deadlines: while a view is read by Tesseract,
// min(image_timeout, message deadline) + kGrace; at any other step (decoding, PDF parsing, model
// loading) the message deadline + kGrace. Past it, or when `cancel` is set, the helper gets SIGKILL
// and is reaped; a new one is started at once for the slot's next part. A helper that dies on its
// own (crash, SIGXCPU, out of memory), answers garbage or cannot be started ends the part as
// Crashed. Every start, kill and death is counted (ocr_workers_total{event}) and logged.
// Contract: thread-safe across slots; one caller per slot at a time; no Asio.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "filters/ocr/part.h"

namespace filters::ocr {

inline constexpr std::chrono::milliseconds kGrace{500};

// The helper's side: `argv` after "--ocr-worker"; returns the exit code (never returns normally
// while the server keeps the socket open).
int worker_main(int argc, char** argv);

// True when built with AddressSanitizer or ThreadSanitizer: RLIMIT_AS is then not applied.
bool sanitizer_build();

class WorkerProcs {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::string exe = "/proc/self/exe";     // the binary that understands `--ocr-worker`
    uint64_t memory_limit = 1ull << 30;     // RLIMIT_AS of a helper (0 = none)
    uint64_t max_parts = 1000;              // a helper is replaced after this many parts (0 = never)
    EngineSettings engine;                  // the model a new helper loads at start
  };
  enum class End { Done, Deadline, Cancelled, Crashed };
  static std::string_view end_name(End e);  // "done", "deadline", "cancelled", "crashed"
  struct Stats {
    uint64_t spawned = 0, killed_deadline = 0, killed_cancel = 0, crashed = 0, spawn_failed = 0;
    size_t alive = 0;
  };

  WorkerProcs(size_t slots, Options o);
  ~WorkerProcs();  // every helper killed and reaped
  WorkerProcs(const WorkerProcs&) = delete;
  WorkerProcs& operator=(const WorkerProcs&) = delete;

  // A reload: helpers started from now on use `o`; a running helper started with another memory
  // limit or model is replaced before its next part.
  void configure(Options o);

  // Reads one part in slot `slot`'s helper; `sink` hears what the helper tells; `detail` says why
  // a part ended other than Done.
  End run_part(size_t slot, std::string_view bytes, const PartJob& job, PartSink& sink,
               Clock::time_point deadline, const std::atomic<bool>* cancel, std::string& detail);

  size_t slots() const { return slots_.size(); }
  Stats stats() const;
  std::vector<int> pids() const;  // helpers alive (tests)

 private:
  struct Slot {
    int pid = -1;
    int fd = -1;
    uint64_t parts = 0;
    uint64_t memory_limit = 0;
    EngineSettings engine;
  };
  bool spawn(Slot& s, std::string& error);
  void kill_and_reap(Slot& s, std::string_view why);
  void reap(Slot& s, std::string& how);
  Options options() const;

  mutable std::mutex mu_;  // options_, and the slots' pid/fd for stats and pids()
  Options options_;
  std::vector<Slot> slots_;
  std::atomic<uint64_t> spawned_{0}, killed_deadline_{0}, killed_cancel_{0}, crashed_{0}, spawn_failed_{0};
};

}  // namespace filters::ocr
