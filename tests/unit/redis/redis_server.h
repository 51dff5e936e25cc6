// test_redis::RedisServer — a real redis-server child process on a free 127.0.0.1 port, for tests
// (ready() is false when it could not start: tests assert it, never skip); with a Pki, the port is
// its tls-port (plain port off, client certificates required). test_redis::Pki — a throwaway CA
// and certificates made with the openssl CLI in a temp dir (ok() false when openssl failed).
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace test_redis {
using namespace std::chrono_literals;

inline uint16_t free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

inline bool port_open(uint16_t port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(s);
  return ok;
}

// A CA (ca.pem) and leaves signed by it: server.pem/.key (CN and SAN DNS redis.test, IP 127.0.0.1)
// and client.pem/.key; other_ca.pem is a CA that signed nothing here.
class Pki {
 public:
  Pki() {
    char tmpl[] = "/tmp/redis-pki.XXXXXX";
    if (!mkdtemp(tmpl)) return;
    dir_ = tmpl;
    ok_ = make_ca("ca") && make_ca("other_ca") && make_leaf("server") && make_leaf("client");
  }
  ~Pki() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  bool sh(const std::string& cmd) { return std::system(("cd " + dir_ + " && " + cmd + " >/dev/null 2>&1").c_str()) == 0; }
  bool make_ca(const std::string& n) {
    return sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + n + ".key -out " + n +
              ".pem -days 2 -subj /CN=" + n + " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign");
  }
  bool make_leaf(const std::string& n) {
    std::ofstream(path(n + ".ext")) << "subjectAltName=DNS:redis.test,IP:127.0.0.1\n";
    return sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + n + ".key -out " + n +
              ".csr -subj /CN=redis.test") &&
           sh("openssl x509 -req -in " + n + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile " + n +
              ".ext -out " + n + ".pem");
  }
  std::string dir_;
  bool ok_ = false;
};

// A redis-server child process on 127.0.0.1:port (its tls-port with a Pki).
class RedisServer {
 public:
  explicit RedisServer(std::vector<std::string> extra = {}, const Pki* tls = nullptr)
      : port_(free_port()), extra_(std::move(extra)) {
    if (tls)
      extra_.insert(extra_.end(), {"--tls-cert-file", tls->path("server.pem"), "--tls-key-file", tls->path("server.key"),
                                   "--tls-ca-cert-file", tls->path("ca.pem"), "--tls-auth-clients", "yes"});
    tls_ = tls != nullptr;
    start();
  }
  ~RedisServer() { kill_now(); }
  void start() {
    std::vector<std::string> args{"redis-server", "--port", tls_ ? "0" : std::to_string(port_), "--save", "",
                                  "--appendonly", "no", "--bind", "127.0.0.1", "--daemonize", "no", "--loglevel",
                                  "warning"};
    if (tls_) args.insert(args.end(), {"--tls-port", std::to_string(port_)});
    args.insert(args.end(), extra_.begin(), extra_.end());
    pid_ = fork();
    if (pid_ == 0) {
      // dies with the test: a test that aborts (a sanitizer report) must not leave a server
      // holding ctest's output pipe open (ctest would wait for it forever)
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("redis-server", argv.data());
      _exit(127);
    }
    for (int i = 0; i < 250 && !port_open(port_); ++i) {
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    ready_ = pid_ > 0 && port_open(port_);
  }
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }
  bool ready() const { return ready_; }
  uint16_t port() const { return port_; }

 private:
  uint16_t port_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
  bool ready_ = false, tls_ = false;
};

}  // namespace test_redis
