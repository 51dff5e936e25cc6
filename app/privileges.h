// Started as root (outside systemd and containers, which start mxfront as its own user): become
// server.user before anything reads certificates, secrets or signatures, so the start and every
// reload see the same permissions; only CAP_NET_BIND_SERVICE is kept, for listeners on ports
// below 1024 (as systemd's AmbientCapabilities= does).
#pragma once
#include <string>

namespace app {

// "" = done (or nothing to do); else why not (the program must not start).
// Root with an empty `user` logs a warning and stays root.
std::string drop_privileges(const std::string& user);

}  // namespace app
