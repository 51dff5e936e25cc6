// The [clamav] section: plain values, filled by the rows in descriptor.cc.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>

namespace filters::clamav {

// What a message that exceeds a scan limit gets: relayed and logged, 451 4.3.0 or 554 5.7.1.
// on_structure_limit (nesting or part count: structure the scanner did not see into) is never
// Accept: only TempFail or Reject.
enum class OnLimit { Accept, TempFail, Reject };

struct Settings {
  std::string database_dir;            // *.cvd/*.cld/*.hdb/*.ndb/...; required when clamav is in a chain
  std::string temp_dir;                // where libclamav unpacks parts (CL_ENGINE_TMPDIR); empty: $TMPDIR or /tmp
  std::chrono::duration<double> reload_check{60};  // how often the directory is checked for changed signatures
  size_t max_scan_size = 104857600;    // CL_ENGINE_MAX_SCANSIZE
  size_t max_file_size = 26214400;     // CL_ENGINE_MAX_FILESIZE
  size_t max_files = 10000;            // CL_ENGINE_MAX_FILES
  size_t max_recursion = 16;           // CL_ENGINE_MAX_RECURSION
  std::chrono::duration<double> max_scan_time{30};  // CL_ENGINE_MAX_SCANTIME
  OnLimit on_limit = OnLimit::Accept;             // size and time limits: MaxFileSize, MaxScanSize, MaxScanTime
  OnLimit on_structure_limit = OnLimit::Reject;   // every other limit: MaxRecursion, MaxFiles, Email* (never Accept)
};

}  // namespace filters::clamav
