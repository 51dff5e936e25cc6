// OCR worker processes (filters/ocr/worker.*) with real Leptonica and Tesseract in a real helper
// process (ocr_worker_main): a part read and its views offered to the cache; a hostile picture
// (4000x4000 noise of 4x4 squares, on which Tesseract's layout analysis ignores its deadline)
// killed at the deadline or on cancel, its process gone; a helper killed from outside and a helper
// that cannot start end the part as Crashed; the next part gets a new helper.
#include <gtest/gtest.h>
#include <leptonica/allheaders.h>
#include <signal.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "filters/ocr/worker.h"

namespace {
using filters::ocr::PartHeader;
using filters::ocr::PartJob;
using filters::ocr::PartKind;
using filters::ocr::WorkerProcs;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string png_of(PIX* pix) {
  l_uint8* data = nullptr;
  size_t size = 0;
  pixWriteMem(&data, &size, pix, IFF_PNG);
  pixDestroy(&pix);
  std::string out(reinterpret_cast<char*>(data), size);
  lept_free(data);
  return out;
}

std::string blank_png(int w, int h) {
  PIX* pix = pixCreate(w, h, 8);
  pixSetAllArbitrary(pix, 255);
  return png_of(pix);
}

// 4000x4000 1 bpp, random 4x4 squares.
std::string noise_png() {
  PIX* small = pixCreate(1000, 1000, 1);
  std::mt19937 rng(4000);
  l_uint32* data = pixGetData(small);
  for (int i = 0; i < pixGetWpl(small) * 1000; ++i) data[i] = rng();
  PIX* big = pixExpandBinaryReplicate(small, 4, 4);
  pixDestroy(&small);
  return png_of(big);
}

struct Recorder final : filters::ocr::PartSink {
  PartHeader header;
  bool decoded_seen = false;
  int offered = 0, reads = 0;
  bool answer = false;  // what cached() says
  std::string last_key;
  void decoded(const PartHeader& h) override {
    header = h;
    decoded_seen = true;
  }
  bool cached(const std::string& key, const std::string&) override {
    ++offered;
    last_key = key;
    return answer;
  }
  void read(const std::string&, bool) override { ++reads; }
};

WorkerProcs::Options options() {
  WorkerProcs::Options o;
  o.exe = OCR_WORKER_EXE;
  return o;
}

PartJob job(int64_t image_timeout_ms = 3000, int64_t budget_ms = 10000) {
  PartJob j;
  j.kind = PartKind::Image;
  j.image_timeout_ms = image_timeout_ms;
  j.budget_ms = budget_ms;
  return j;
}

// As app/main.cc sees to it for the server: one OpenMP thread per recognition in the helpers.
const int kOmp = setenv("OMP_THREAD_LIMIT", "1", 0);

bool gone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

TEST(OcrWorker, ReadsAPictureAndOffersItsViewToTheCache) {
  WorkerProcs procs(1, options());
  std::string png = blank_png(300, 80);
  Recorder rec;
  std::string detail;
  std::atomic<bool> cancel{false};
  auto end = procs.run_part(0, png, job(), rec, Clock::now() + 20s, &cancel, detail);
  ASSERT_EQ(end, WorkerProcs::End::Done) << detail;
  EXPECT_TRUE(rec.decoded_seen);
  EXPECT_EQ(rec.header.image_status, 0);  // image::Status::Ok
  EXPECT_EQ(rec.header.views, 1u);
  EXPECT_EQ(rec.offered, 1);
  EXPECT_EQ(rec.last_key.size(), 64u);  // SHA-256 hex
  EXPECT_EQ(rec.reads, 1);
  // The same helper serves the next part; a cached view is not read.
  auto pids = procs.pids();
  ASSERT_EQ(pids.size(), 1u);
  Recorder again;
  again.answer = true;
  ASSERT_EQ(procs.run_part(0, png, job(), again, Clock::now() + 20s, &cancel, detail), WorkerProcs::End::Done);
  EXPECT_EQ(again.offered, 1);
  EXPECT_EQ(again.reads, 0);
  EXPECT_EQ(procs.pids(), pids);
  EXPECT_EQ(procs.stats().spawned, 1u);
}

TEST(OcrWorker, AHostilePictureIsKilledAtItsDeadlineAndTheHelperIsGone) {
  WorkerProcs procs(1, options());
  std::string png = noise_png();
  std::atomic<bool> cancel{false};
  std::string detail;
  Recorder warm;  // a started helper (model loaded), so the time below is the picture's
  ASSERT_EQ(procs.run_part(0, blank_png(100, 40), job(), warm, Clock::now() + 20s, &cancel, detail), WorkerProcs::End::Done);
  int pid = procs.pids().at(0);
  Recorder rec;
  auto t0 = Clock::now();
  auto end = procs.run_part(0, png, job(300, 10000), rec, t0 + 10s, &cancel, detail);
  auto took = Clock::now() - t0;
  EXPECT_EQ(end, WorkerProcs::End::Deadline) << detail;
  EXPECT_TRUE(rec.decoded_seen);
  EXPECT_EQ(rec.reads, 0);  // killed inside Tesseract
  // Decoding + image_timeout + grace, with room for a loaded machine; unbounded, Tesseract takes
  // 7 s of CPU or more on this picture.
  EXPECT_LT(took, 300ms + filters::ocr::kGrace + 4s);
  EXPECT_TRUE(gone(pid));
  EXPECT_EQ(procs.stats().killed_deadline, 1u);
  // A new helper was started at once, for the next part.
  ASSERT_EQ(procs.pids().size(), 1u);
  EXPECT_NE(procs.pids().at(0), pid);
  Recorder next;
  EXPECT_EQ(procs.run_part(0, blank_png(100, 40), job(), next, Clock::now() + 20s, &cancel, detail), WorkerProcs::End::Done);
  EXPECT_EQ(procs.stats().spawned, 2u);
}

TEST(OcrWorker, CancelKillsTheHelperAtOnce) {
  WorkerProcs procs(1, options());
  std::string png = noise_png();
  std::atomic<bool> cancel{false};
  std::string detail;
  Recorder rec;
  ASSERT_EQ(procs.run_part(0, blank_png(100, 40), job(), rec, Clock::now() + 20s, &cancel, detail), WorkerProcs::End::Done);
  int first = procs.pids().at(0);
  std::thread canceller([&] {
    std::this_thread::sleep_for(1500ms);
    cancel = true;
  });
  auto t0 = Clock::now();
  auto end = procs.run_part(0, png, job(30000, 30000), rec, t0 + 30s, &cancel, detail);
  auto took = Clock::now() - t0;
  canceller.join();
  EXPECT_EQ(end, WorkerProcs::End::Cancelled) << detail;
  EXPECT_LT(took, 3s);
  EXPECT_TRUE(gone(first));
  EXPECT_EQ(procs.stats().killed_cancel, 1u);
}

TEST(OcrWorker, AHelperThatDiesIsACrash) {
  WorkerProcs procs(1, options());
  std::string png = noise_png();
  std::atomic<bool> cancel{false};
  std::string detail;
  Recorder warm;
  ASSERT_EQ(procs.run_part(0, blank_png(100, 40), job(), warm, Clock::now() + 20s, &cancel, detail), WorkerProcs::End::Done);
  int pid = procs.pids().at(0);
  std::thread killer([pid] {
    std::this_thread::sleep_for(800ms);
    ::kill(pid, SIGSEGV);  // as a parser bug would
  });
  Recorder rec;
  auto end = procs.run_part(0, png, job(30000, 30000), rec, Clock::now() + 30s, &cancel, detail);
  killer.join();
  EXPECT_EQ(end, WorkerProcs::End::Crashed);
  // ASan's own SIGSEGV handler reports, then exits with code 1 or aborts (abort_on_error=1)
  // instead of dying of the signal.
  if (filters::ocr::sanitizer_build())
    EXPECT_TRUE(detail.find("exited with code") != std::string::npos || detail.find("signal 6") != std::string::npos) << detail;
  else
    EXPECT_NE(detail.find("signal 11"), std::string::npos) << detail;
  EXPECT_TRUE(gone(pid));
  EXPECT_EQ(procs.stats().crashed, 1u);
}

TEST(OcrWorker, AHelperThatCannotStartIsACrash) {
  auto o = options();
  o.exe = "/nonexistent/mxfront";
  WorkerProcs procs(1, o);
  Recorder rec;
  std::string detail;
  auto end = procs.run_part(0, blank_png(100, 40), job(), rec, Clock::now() + 5s, nullptr, detail);
  EXPECT_EQ(end, WorkerProcs::End::Crashed);
  EXPECT_FALSE(detail.empty());
  EXPECT_TRUE(procs.pids().empty());
}

TEST(OcrWorker, SanitizerBuildsSkipTheMemoryLimit) {
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_TRUE(filters::ocr::sanitizer_build());
#else
  SUCCEED() << "sanitizer build: " << filters::ocr::sanitizer_build();
#endif
}

}  // namespace
