// A minimal blocking HTTP/1.1 client (one request, Connection: close), POSIX sockets only.
#include "ops/admin_client.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace ops {

ReloadAnswer request_reload(const std::string& host_in, uint16_t port, int timeout_seconds) {
  std::string host = host_in == "0.0.0.0" || host_in.empty() ? "127.0.0.1" : host_in == "::" ? "::1" : host_in;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* ai = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &ai); rc != 0)
    return {0, "admin address " + host + ": " + gai_strerror(rc)};
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(ai);
    return {0, std::string("socket: ") + std::strerror(errno)};
  }
  timeval tv{timeout_seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);
  ReloadAnswer a;
  if (rc != 0) {
    a.text = "cannot connect to the admin listener " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
    close(fd);
    return a;
  }
  std::string req = "POST /reload HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    a.text = std::string("send: ") + std::strerror(errno);
    close(fd);
    return a;
  }
  std::string resp;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0 && resp.size() < 65536) {
      resp.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) a.text = std::string("no answer: ") + std::strerror(errno);
    break;
  }
  close(fd);
  if (resp.compare(0, 9, "HTTP/1.1 ") != 0 || resp.size() < 12) {
    if (a.text.empty()) a.text = "no HTTP answer from the admin listener";
    return a;
  }
  a.status = std::atoi(resp.substr(9, 3).c_str());
  size_t body = resp.find("\r\n\r\n");
  a.text = body == std::string::npos ? "" : resp.substr(body + 4);
  return a;
}

}  // namespace ops
