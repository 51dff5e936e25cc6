#include "app/privileges.h"

#include <cerrno>
#include <cstring>
#include <vector>

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"

namespace app {
namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Effective and permitted: CAP_NET_BIND_SERVICE only (no libcap: two capset words).
bool keep_only_net_bind_service() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[CAP_NET_BIND_SERVICE / 32].effective = data[CAP_NET_BIND_SERVICE / 32].permitted =
      1u << (CAP_NET_BIND_SERVICE % 32);
  return syscall(SYS_capset, &hdr, data) == 0;
}

}  // namespace

std::string drop_privileges(const std::string& user) {
  if (geteuid() != 0) return "";
  if (user.empty()) {
    core::log().warn("running as root: set server.user to the account mxfront should run as (or start it as that "
                     "user, like the systemd unit and the container image do)");
    return "";
  }
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found)
    return "server.user: no such user: " + user;
  if (pw.pw_uid == 0) return "server.user: " + user + " is root";
  if (prctl(PR_SET_KEEPCAPS, 1) != 0) return errno_text("prctl(PR_SET_KEEPCAPS)");
  if (initgroups(pw.pw_name, pw.pw_gid) != 0) return errno_text("initgroups");
  if (setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) != 0) return errno_text("setresgid");
  if (setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) != 0) return errno_text("setresuid");
  prctl(PR_SET_KEEPCAPS, 0);
  if (!keep_only_net_bind_service()) return errno_text("capset(CAP_NET_BIND_SERVICE)");
  if (setuid(0) == 0) return "server.user: could still become root again";
  core::log().info("running as {} (uid {} gid {}), keeping CAP_NET_BIND_SERVICE", user, pw.pw_uid, pw.pw_gid);
  return "";
}

}  // namespace app
