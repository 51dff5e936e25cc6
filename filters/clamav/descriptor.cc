// The clamav filter as the program sees it: the [clamav] rows, the requirement of a signature
// directory, and the one compiled engine shared by every generation. The engine is created while
// the first generation is built (an unusable directory is a config error); a later generation
// only checks its directory while it is built, and hands its settings over (a background
// recompilation) once it was accepted as a whole, so a refused reload changes nothing.
#include "filters/clamav/descriptor.h"

#include <mutex>

#include "config/setters.h"
#include "filters/clamav/clamav.h"
#include "filters/clamav/engine.h"

namespace filters::clamav {
namespace {
using namespace config::setters;
using config::Config;
constexpr const char* kName = "clamav";

// The engine and which generations it has seen, kept in Resources across reloads.
struct EngineSlot {
  std::mutex mu;
  std::shared_ptr<EngineHolder> engines;       // null until a generation used clamav
  std::shared_ptr<const Config> checked;       // build() accepted it
  std::shared_ptr<const Config> current;       // handed over (or created the engine)
};

std::shared_ptr<EngineSlot> slot(Resources& r) {
  return r.keep<EngineSlot>(kName, [] { return std::make_shared<EngineSlot>(); });
}

Built build(const BuildContext& b) {
  auto s = slot(b.resources);
  const Settings& settings = b.config->sections.get<Settings>(kName);
  std::lock_guard lk(s->mu);
  if (!s->engines) {
    auto created = EngineHolder::create(settings);
    if (!created.holder) return {nullptr, created.error};
    s->engines = created.holder;
    s->current = b.config;
  } else if (s->checked != b.config && s->current != b.config) {
    if (std::string err = check_settings(settings); !err.empty()) return {nullptr, "clamav: " + err};
  }
  s->checked = b.config;
  return {std::make_shared<ClamavFilter>(s->engines, b.resources.workers, settings), {}};
}

// A later generation hands over its settings; the engine is recompiled in the background (SIGHUP
// is a reload even when nothing changed).
void commit(const BuildContext& b) {
  auto s = slot(b.resources);
  std::lock_guard lk(s->mu);
  if (!s->engines || s->checked != b.config || s->current == b.config) return;
  s->engines->reconfigure(b.config->sections.get<Settings>(kName));
  s->current = b.config;
}

std::vector<core::Dependency> dependencies(const BuildContext& b) {
  auto s = slot(b.resources);
  std::lock_guard lk(s->mu);
  if (!s->engines) return {};
  return {{"clamav", b.config->sections.get<Settings>(kName).database_dir,
           [engines = s->engines] { return health(engines->status()); }}};
}

std::vector<config::Parameter> rows() {
  constexpr int64_t kBig = int64_t{1} << 40;
  return {
      {"clamav", "database_dir", "string", "(required for clamav)", "Signature directory (*.cvd, *.cld, *.hdb, *.ndb ...), loaded at start; changes are compiled in the background and swapped in.",
       string_param(field(kName, &Settings::database_dir))},
      {"clamav", "temp_dir", "string", "", "Where libclamav writes the parts it unpacks while scanning (a private directory is made inside). Empty: $TMPDIR or /tmp. A tmpfs (/dev/shm, a RuntimeDirectory, an emptyDir with medium Memory) saves a file system round trip per scan; it is read at start and on reload.",
       string_param(field(kName, &Settings::temp_dir))},
      {"clamav", "reload_check", "seconds", "60", "How often the signature directory is checked for changes (SIGHUP also reloads).",
       seconds_param(field(kName, &Settings::reload_check), 0.1, 86400)},
      {"clamav", "max_scan_size", "integer", "104857600", "Octets scanned per message (CL_ENGINE_MAX_SCANSIZE).",
       size_param(field(kName, &Settings::max_scan_size), 1024, kBig)},
      {"clamav", "max_file_size", "integer", "26214400", "Largest attachment or archive member scanned (CL_ENGINE_MAX_FILESIZE).",
       size_param(field(kName, &Settings::max_file_size), 1024, kBig)},
      {"clamav", "max_files", "integer", "10000", "Files scanned inside one message (CL_ENGINE_MAX_FILES); more: clamav.on_structure_limit.",
       size_param(field(kName, &Settings::max_files), 1, 1000000)},
      {"clamav", "max_recursion", "integer", "16", "Nesting of archives and MIME parts (CL_ENGINE_MAX_RECURSION); deeper: clamav.on_structure_limit.",
       size_param(field(kName, &Settings::max_recursion), 1, 100)},
      {"clamav", "max_scan_time", "seconds", "30", "Scan time per message (CL_ENGINE_MAX_SCANTIME).",
       seconds_param(field(kName, &Settings::max_scan_time), 0.1, 3600)},
      {"clamav", "on_limit", "string", "accept", "A message exceeding a size or time limit (max_file_size, max_scan_size, max_scan_time): \"accept\" (relayed, logged), \"tempfail\" (451 4.3.0) or \"reject\" (554 5.7.1).",
       enum_param(field(kName, &Settings::on_limit), std::vector<std::pair<std::string, OnLimit>>{
                                                          {"accept", OnLimit::Accept}, {"tempfail", OnLimit::TempFail}, {"reject", OnLimit::Reject}})},
      {"clamav", "on_structure_limit", "string", "reject", "A message the scanner could not see into (max_recursion, max_files, its mail parser's limits): \"reject\" (554 5.6.0) or \"tempfail\" (451 4.3.0); never relayed.",
       enum_param(field(kName, &Settings::on_structure_limit), std::vector<std::pair<std::string, OnLimit>>{
                                                                    {"reject", OnLimit::Reject}, {"tempfail", OnLimit::TempFail}})},
  };
}

}  // namespace

std::shared_ptr<EngineHolder> shared_engine(Resources& r) {
  auto s = slot(r);
  std::lock_guard lk(s->mu);
  return s->engines;
}

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = kName;
  d.schema.defaults = {config::Seconds(120), config::OnError::TempFail};
  d.schema.rows = rows();
  d.schema.required = [](const Config& c) -> std::string {
    return c.sections.get<Settings>(kName).database_dir.empty() ? "clamav.database_dir is required" : "";
  };
  d.build = build;
  d.commit = commit;
  d.dependencies = dependencies;
  return d;
}

}  // namespace filters::clamav
