// hiredis <-> Asio: readiness waits re-armed while hiredis wants them (asio_adapter.h).
#include "redis/asio_adapter.h"

#include <hiredis/async.h>

#include <boost/asio/posix/stream_descriptor.hpp>

namespace redis {
namespace asio = boost::asio;

struct AsioWatch : std::enable_shared_from_this<AsioWatch> {
  AsioWatch(redisAsyncContext* c, asio::any_io_executor ex) : ctx(c), sd(ex, c->c.fd) {}
  redisAsyncContext* ctx;  // null after cleanup
  asio::posix::stream_descriptor sd;
  bool want_read = false, want_write = false, reading = false, writing = false;
  std::shared_ptr<AsioWatch> self;  // held while hiredis holds ev.data

  void arm_read() {
    if (!ctx || !want_read || reading) return;
    reading = true;
    sd.async_wait(asio::posix::stream_descriptor::wait_read, [w = shared_from_this()](boost::system::error_code ec) {
      w->reading = false;
      if (ec || !w->ctx || !w->want_read) return;
      redisAsyncHandleRead(w->ctx);  // may free the context (cleanup nulls ctx)
      w->arm_read();
    });
  }
  void arm_write() {
    if (!ctx || !want_write || writing) return;
    writing = true;
    sd.async_wait(asio::posix::stream_descriptor::wait_write, [w = shared_from_this()](boost::system::error_code ec) {
      w->writing = false;
      if (ec || !w->ctx || !w->want_write) return;
      redisAsyncHandleWrite(w->ctx);
      w->arm_write();
    });
  }

  static AsioWatch* of(void* p) { return static_cast<AsioWatch*>(p); }
  static void add_read(void* p) { of(p)->want_read = true, of(p)->arm_read(); }
  static void del_read(void* p) { of(p)->want_read = false; }
  static void add_write(void* p) { of(p)->want_write = true, of(p)->arm_write(); }
  static void del_write(void* p) { of(p)->want_write = false; }
  static void cleanup(void* p) {
    auto keep = std::move(of(p)->self);
    keep->ctx = nullptr;
    keep->want_read = keep->want_write = false;
    boost::system::error_code ec;
    keep->sd.cancel(ec);
    (void)keep->sd.release();  // hiredis closes the fd
  }
};

std::shared_ptr<AsioWatch> attach(redisAsyncContext* ctx, asio::any_io_executor ex) {
  if (ctx->ev.data) return nullptr;
  auto w = std::make_shared<AsioWatch>(ctx, ex);
  w->self = w;
  ctx->ev.data = w.get();
  ctx->ev.addRead = &AsioWatch::add_read;
  ctx->ev.delRead = &AsioWatch::del_read;
  ctx->ev.addWrite = &AsioWatch::add_write;
  ctx->ev.delWrite = &AsioWatch::del_write;
  ctx->ev.cleanup = &AsioWatch::cleanup;
  return w;
}

}  // namespace redis
