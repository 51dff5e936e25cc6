// redis::attach — hiredis's event hooks (ev.addRead/delRead/addWrite/delWrite/cleanup) driven by
// Asio: the context's socket is watched with posix::stream_descriptor::async_wait on `ex` and
// redisAsyncHandleRead/Write run there. hiredis keeps owning the fd (released, never closed, here).
// The returned handle outlives the context safely; after cleanup it does nothing.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <memory>

#include <boost/asio/any_io_executor.hpp>

struct redisAsyncContext;

namespace redis {

struct AsioWatch;
// Call once, right after redisAsyncConnect succeeded; false if hooks were already attached.
std::shared_ptr<AsioWatch> attach(redisAsyncContext* ctx, boost::asio::any_io_executor ex);

}  // namespace redis
