// config::Sections — the settings of config sections that another subsystem owns (each filter's
// [name] section, declared in its own folder): stored by section name, typed by their owner.
// The owner's parameter rows fill them while the file loads (edit); readers get them with get,
// which returns the type's defaults when the file has no such section. Asking for a section with
// another type than the one it holds is a programming error and aborts.
#pragma once
#include <any>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

namespace config {

class Sections {
 public:
  template <class T>
  T& edit(std::string_view name) {
    auto it = items_.find(name);
    if (it == items_.end()) it = items_.emplace(std::string(name), T{}).first;
    return checked<T>(std::any_cast<T>(&it->second));
  }

  template <class T>
  const T& get(std::string_view name) const {
    static const T defaults{};
    auto it = items_.find(name);
    if (it == items_.end()) return defaults;
    return checked<T>(std::any_cast<T>(&it->second));
  }

 private:
  template <class T>
  static T& checked(T* p) {
    if (!p) std::abort();  // the section's owner and a reader disagree on its type
    return *p;
  }
  template <class T>
  static const T& checked(const T* p) {
    if (!p) std::abort();
    return *p;
  }
  std::map<std::string, std::any, std::less<>> items_;
};

}  // namespace config
