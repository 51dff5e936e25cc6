// c-ares channels driven by Asio: sockets watched with non-owning stream_descriptors, the c-ares
// timeout with a steady_timer, one channel per io_context and option set (an io_context service).
#include "net/dns.h"

#include <ares.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <mutex>

namespace net {
namespace asio = boost::asio;

std::string DnsOptions::key() const {
  std::string k;
  for (const auto& s : servers) k += s + ",";
  return k + "|" + std::to_string(timeout.count()) + "|" + std::to_string(tries) + (error_answers ? "|e" : "");
}

// ------------------------------------------------------------------------------------------------
// the channel
struct Resolver::Impl : std::enable_shared_from_this<Resolver::Impl> {
  // One query in flight; owns the completion handler until c-ares answers.
  struct Op {
    DnsType type = DnsType::A;
    virtual ~Op() = default;
    virtual void complete(DnsAnswer a) = 0;
  };
  template <class Handler>
  struct OpImpl final : Op {
    OpImpl(Handler h, asio::any_io_executor ex) : handler(std::move(h)), fallback(std::move(ex)) {}
    void complete(DnsAnswer a) override {
      auto ex = asio::get_associated_executor(handler, fallback);
      // Posted, never called from inside ares_process_fd: the awaiting coroutine may query again.
      asio::post(ex, [h = std::move(handler), a = std::move(a)]() mutable { h(std::move(a)); });
    }
    Handler handler;
    asio::any_io_executor fallback;
  };
  // One c-ares socket: a non-owning descriptor (released before c-ares closes the fd).
  struct Watch {
    Watch(const asio::any_io_executor& ex, int f) : sd(ex, f), fd(f) {}
    asio::posix::stream_descriptor sd;
    int fd;
    bool want_read = false, want_write = false, reading = false, writing = false, closed = false;
  };

  explicit Impl(asio::any_io_executor e) : ex(std::move(e)), timer(ex) {}

  asio::any_io_executor ex;
  asio::steady_timer timer;
  ares_channel ch = nullptr;
  bool down = false;
  std::map<int, std::shared_ptr<Watch>> watches;

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<Impl*>(data);
    if (!readable && !writable) return self->forget(fd);
    auto& w = self->watches[fd];
    if (!w) {
      try {
        w = std::make_shared<Watch>(self->ex, fd);
      } catch (const std::exception&) {  // cannot watch it: the query will time out
        self->watches.erase(fd);
        return;
      }
    }
    w->want_read = readable;
    w->want_write = writable;
    self->arm(w);
  }

  static void on_answer(void* arg, int status, int, unsigned char* abuf, int alen) {
    std::unique_ptr<Op> op(static_cast<Op*>(arg));
    if (status == ARES_EDESTRUCTION) return;  // channel destroyed at io_context shutdown: drop it
    DnsAnswer a;
    if (status == ARES_SUCCESS || status == ARES_ENOTFOUND || status == ARES_ENODATA) {
      if (abuf && alen > 0) {
        a = parse_response(abuf, static_cast<size_t>(alen), op->type);
      } else {
        a.status = status == ARES_ENOTFOUND ? DnsStatus::NxDomain : status == ARES_ENODATA ? DnsStatus::NoData : DnsStatus::Failure;
      }
    } else {
      a.status = status == ARES_ETIMEOUT ? DnsStatus::Timeout : DnsStatus::Failure;
      a.error = ares_strerror(status);
      a.server_answered = status == ARES_ESERVFAIL || status == ARES_EREFUSED || status == ARES_ENOTIMP ||
                          status == ARES_EFORMERR || status == ARES_EBADRESP;
    }
    op->complete(std::move(a));
  }

  void forget(int fd) {
    auto it = watches.find(fd);
    if (it == watches.end()) return;
    it->second->closed = true;
    it->second->sd.release();  // cancels our waits and deregisters; c-ares closes the fd
    watches.erase(it);
  }

  void arm(const std::shared_ptr<Watch>& w) {
    std::weak_ptr<Impl> weak = weak_from_this();
    if (w->want_read && !w->reading) {
      w->reading = true;
      w->sd.async_wait(asio::posix::stream_descriptor::wait_read, [weak, w](boost::system::error_code ec) {
        w->reading = false;
        if (auto self = weak.lock(); self && !ec && !w->closed) self->ready(w, true);
      });
    }
    if (w->want_write && !w->writing) {
      w->writing = true;
      w->sd.async_wait(asio::posix::stream_descriptor::wait_write, [weak, w](boost::system::error_code ec) {
        w->writing = false;
        if (auto self = weak.lock(); self && !ec && !w->closed) self->ready(w, false);
      });
    }
  }

  void ready(const std::shared_ptr<Watch>& w, bool read) {
    if (down) return;
    process(read ? w->fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : w->fd);
    if (!w->closed) arm(w);
  }

  void process(ares_socket_t rfd, ares_socket_t wfd) {
    if (down || !ch) return;
    ares_process_fd(ch, rfd, wfd);
    arm_timer();
  }

  void arm_timer() {
    if (down || !ch) return;
    timeval tv{};
    timeval* t = ares_timeout(ch, nullptr, &tv);
    if (!t) {
      timer.cancel();
      return;
    }
    timer.expires_after(std::chrono::seconds(t->tv_sec) + std::chrono::microseconds(t->tv_usec));
    std::weak_ptr<Impl> weak = weak_from_this();
    timer.async_wait([weak](boost::system::error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    });
  }

  template <class Handler>
  void start(const std::string& name, DnsType type, Handler h) {
    auto* op = new OpImpl<Handler>(std::move(h), ex);
    op->type = type;
    if (down || !ch) {
      DnsAnswer a;
      a.error = "resolver shut down";
      op->complete(std::move(a));
      delete op;
      return;
    }
    ares_query(ch, name.c_str(), 1 /* C_IN */, static_cast<int>(type), &Impl::on_answer, op);
    arm_timer();
  }

  void shutdown() {
    if (down) return;
    down = true;
    timer.cancel();
    if (ch) ares_destroy(ch);  // closes its sockets (forget() each) and drops pending queries
    ch = nullptr;
    for (auto& [fd, w] : watches) {
      w->closed = true;
      w->sd.release();
    }
    watches.clear();
  }
};

namespace {

// The channels of one io_context, destroyed with it.
class DnsService : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;
  explicit DnsService(asio::execution_context& c) : asio::execution_context::service(c) {}
  void shutdown() override {
    std::map<std::string, std::shared_ptr<Resolver>> all;
    {
      std::lock_guard lock(mu);
      all.swap(resolvers);
    }
    for (auto& [key, r] : all) r->shutdown();
  }
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Resolver>> resolvers;
};
asio::execution_context::id DnsService::id;

std::once_flag g_ares_init;

}  // namespace

Resolver::Resolver(asio::any_io_executor ex, const DnsOptions& o) : impl_(std::make_shared<Impl>(std::move(ex))) {
  std::call_once(g_ares_init, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  ares_options opts{};
  opts.timeout = static_cast<int>(std::max<int64_t>(1, o.timeout.count()));
  opts.tries = static_cast<int>(std::max(1u, o.tries));
  opts.sock_state_cb = &Impl::on_sock_state;
  opts.sock_state_cb_data = impl_.get();
  int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
  if (o.error_answers) {
    opts.flags = ARES_FLAG_NOCHECKRESP;
    mask |= ARES_OPT_FLAGS;
  }
  int rc = ares_init_options(&impl_->ch, &opts, mask);
  if (rc != ARES_SUCCESS) {
    init_error_ = std::string("c-ares init: ") + ares_strerror(rc);
    impl_->ch = nullptr;
    return;
  }
  if (!o.servers.empty()) {
    std::string csv;
    for (const auto& s : o.servers) csv += (csv.empty() ? "" : ",") + s;
    rc = ares_set_servers_ports_csv(impl_->ch, csv.c_str());
    if (rc != ARES_SUCCESS) init_error_ = "DNS servers '" + csv + "': " + ares_strerror(rc);
  }
}

Resolver::~Resolver() { impl_->shutdown(); }

void Resolver::shutdown() { impl_->shutdown(); }

size_t Resolver::open_sockets() const { return impl_->watches.size(); }

std::shared_ptr<Resolver> Resolver::get(const asio::any_io_executor& ex, const DnsOptions& o) {
  auto& svc = asio::use_service<DnsService>(asio::query(ex, asio::execution::context));
  std::lock_guard lock(svc.mu);
  auto& r = svc.resolvers[o.key()];
  if (!r) r = std::make_shared<Resolver>(ex, o);
  return r;
}

asio::awaitable<DnsAnswer> Resolver::query(std::string_view name, DnsType type) {
  std::shared_ptr<Impl> impl = impl_;  // the channel stays alive while this query waits
  if (!init_error_.empty()) {
    DnsAnswer a;
    a.error = init_error_;
    co_return a;
  }
  std::string n(name);
  // Named, not a temporary inside the co_await (see net/blocking_pool.h on the GCC 12 bug).
  auto init = [impl, &n, type](auto handler) { impl->start(n, type, std::move(handler)); };
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(DnsAnswer)>(std::move(init),
                                                                                           asio::use_awaitable);
}

}  // namespace net
