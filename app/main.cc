// mxfront entry point: command line, config loading, start-up. With app/generation (what a config
// generation is built from) and app/operations (admin endpoints, health checks, systemd), the only
// code that knows every module.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include "app/generation.h"
#include "app/operations.h"
#include "app/privileges.h"
#include "config/load.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/version.h"
#include "filters/ocr/worker.h"
#include "filters/registry/registry.h"
#include "ops/admin_client.h"
#include "smtpd/server.h"

namespace {
// To stdout when asked for (--help, exit 0), to stderr after a usage error (exit 2).
void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: mxfront --config FILE        run the server\n"
               "       mxfront --check-config FILE  validate FILE (every error, one file:line each) and exit (0 = valid)\n"
               "       mxfront --reload FILE        ask the server running FILE to reload it (POST /reload on\n"
               "                                    its [admin] address, loopback); 0 = reloaded, 1 = refused\n"
               "       mxfront --config-doc         print every config key with its default\n"
               "       mxfront --version\n"
               "       mxfront --help\n");
}
}  // namespace

namespace {
// Debian's libtesseract is built with OpenMP and asks for teams of 4 threads in its LSTM code; the
// worker pool is the parallelism, and measured (bench/ocr.py) the teams cost 8x the CPU per image.
// Only OMP_THREAD_LIMIT caps them, and libgomp reads it when it is loaded, before main(): so when it
// is unset, set it to 1 and exec this program again (same pid, same arguments). An operator's own
// value is kept.
void limit_openmp_threads(char** argv) {
  if (std::getenv("OMP_THREAD_LIMIT")) return;
  setenv("OMP_THREAD_LIMIT", "1", 1);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc): run on; OCR then only costs more CPU.
}
}  // namespace

int main(int argc, char** argv) {
  limit_openmp_threads(argv);
  // The OCR helper process (filters/ocr/worker.h): started by the ocr filter, never by hand.
  if (argc >= 2 && std::strcmp(argv[1], "--ocr-worker") == 0) return filters::ocr::worker_main(argc - 2, argv + 2);
  std::signal(SIGPIPE, SIG_IGN);  // a peer that vanished is an error code, never a dead process
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("mxfront %s (%s)\n", core::kVersion, core::kGitRev);
    return 0;
  }
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  if (argc == 2 && std::strcmp(argv[1], "--config-doc") == 0) {
    std::fputs(config::markdown_table(filters::config_schema()).c_str(), stdout);
    return 0;
  }
  if (argc != 3 || (std::strcmp(argv[1], "--config") != 0 && std::strcmp(argv[1], "--check-config") != 0 &&
                    std::strcmp(argv[1], "--reload") != 0)) {
    usage(stderr);
    return 2;
  }
  smtpd::block_control_signals();  // before any thread: only the main loop takes them
  const config::Schema& schema = filters::config_schema();
  config::LoadResult r = config::load(argv[2], schema);
  if (!r.config) {
    std::fprintf(stderr, "%s\n", r.error.c_str());
    return 1;
  }
  if (std::strcmp(argv[1], "--reload") == 0) {  // systemd's ExecReload: fails when the reload is refused
    const auto& a = r.config->admin;
    if (a.host.empty()) {
      std::fprintf(stderr, "%s has no [admin] address: the reload result cannot be asked for (kill -HUP reloads blindly)\n", argv[2]);
      return 1;
    }
    ops::ReloadAnswer ans = ops::request_reload(a.host, a.port);
    std::fprintf(ans.status == 200 ? stdout : stderr, "%s%s", ans.text.c_str(),
                 !ans.text.empty() && ans.text.back() == '\n' ? "" : "\n");
    return ans.status == 200 ? 0 : 1;
  }
  if (std::strcmp(argv[1], "--check-config") == 0) {
    smtpd::SnapshotOrError snap = app::build_generation(r.config);  // TLS context, directory and filters too
    if (!snap.snap) {
      std::fprintf(stderr, "%s\n", snap.error.c_str());
      return 1;
    }
    std::printf("%s: ok (sha256 %s)\n", argv[2], r.config->hash.c_str());
    return 0;
  }
  core::init_logging(r.config->log_level, r.config->log_syslog);
  // Root: become server.user before certificates, secrets and signatures are read (a reload then
  // sees the same permissions as the start).
  if (std::string err = app::drop_privileges(r.config->user); !err.empty()) {
    core::log().error("{}", err);
    return 1;
  }
  core::log().info("mxfront {} ({}) config {} sha256 {}", core::kVersion, core::kGitRev, r.config->source,
                   r.config->hash.substr(0, 12));
  app::Operations operations;  // its admin listener answers while the generation (signatures) loads
  if (!operations.open_admin_early(*r.config)) return 1;
  std::string farm_error;
  auto farm_counts = app::make_farm_counts(*r.config, farm_error);
  if (!farm_error.empty()) {
    core::log().error("{}", farm_error);
    return 1;
  }
  smtpd::SnapshotOrError snap = app::build_generation(r.config, nullptr, farm_counts);
  if (!snap.snap) {
    core::log().error("{}", snap.error);
    return 1;
  }
  for (const auto& d : filters::registry())
    for (const auto& family : d.metrics) core::describe(family);
  // A reload reads the file again and builds the next generation on the running one's resources.
  auto rebuild = [&schema](const smtpd::Snapshot& current) -> smtpd::SnapshotOrError {
    config::LoadResult next = config::load(current.config->source, schema);
    if (!next.config) return {nullptr, next.error};
    smtpd::SnapshotOrError built = app::build_generation(next.config, current.resources, current.farm_counts);
    if (built.snap) core::init_logging(next.config->log_level, next.config->log_syslog);
    return built;
  };
  smtpd::Server server(snap.snap, operations.hooks(rebuild));
  operations.attach(server);
  int rc = server.run();
  operations.stop();
  return rc;
}
