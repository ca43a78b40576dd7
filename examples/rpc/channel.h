// rpc::Channel: a multiplexing client for the example RPC protocol (frame.h).
// One TCP connection carries the calls of any number of fibers at once.
//
//   rpc::Channel channel;
//   if (std::error_code error = channel.Connect("127.0.0.1", port)) { ... }
//   const weft::Deadline deadline = std::chrono::seconds(1);   // for both calls
//   weft::Future<rpc::Reply> a = channel.Call(rpc::Method::kEcho, "x", deadline);
//   weft::Future<rpc::Reply> b = channel.Call(rpc::Method::kEcho, "y", deadline);
//   auto [ra, rb] = weft::BlockingGet(weft::WhenAll(std::move(a), std::move(b)));
//   if (ra.error) { ... ra.error.message() ... }
//
// How a call goes:
//   - Call() files a Promise under a fresh call id, sets a timer for the
//     call's deadline and writes the request frame. Writers take turns on a
//     FiberMutex, so frames never interleave; the caller gets the Future at
//     once and may wait for it, combine it (WhenAll) or attach a continuation.
//   - One reader fiber per channel reads reply frames, looks the id up and
//     completes that call's promise. Replies may come in any order.
//   - If the deadline timer fires first, the call fails with
//     std::errc::timed_out; its reply, when it comes, finds no call and is
//     dropped (late_replies() counts those).
//   - When the connection ends, every call still waiting fails with
//     RpcError::kConnectionClosed (or the read error), and so does every
//     later call.
// A timer per call keeps the example short; a framework would rather keep the
// deadlines of a connection's calls in one structure served by one timer.
//
// Thread-safety: Call() may be made from any number of fibers and plain
// threads at once, also while Close() runs. Connect(), Close() and the
// destructor must not run concurrently with one another, and must not be
// called from a continuation of a call's future (it may run on the reader
// fiber, which Close() joins).
#ifndef WEFT_EXAMPLES_RPC_CHANNEL_H_
#define WEFT_EXAMPLES_RPC_CHANNEL_H_

#include <sys/socket.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "examples/rpc/frame.h"
#include "runtime/deadline.h"
#include "runtime/fiber.h"
#include "runtime/future/future.h"
#include "runtime/io/tcp.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/timer/timer.h"

namespace rpc {

// How a call ended.
struct Reply {
  std::error_code error;  // empty: the call succeeded
  std::string payload;    // the reply; with an RpcError, the server's explanation
};

class Channel {
 public:
  Channel() = default;
  ~Channel() { Close(); }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Connects to `host`:`port` and starts the reader fiber.
  std::error_code Connect(std::string_view host, std::uint16_t port,
                          weft::Deadline deadline = {}) {
    if (std::error_code error = stream_.Connect(host, port, deadline)) return error;
    {
      std::lock_guard<weft::FiberMutex> lock(mutex_);
      closed_ = false;
    }
    reader_ = weft::Fiber([this] { ReadReplies(); });
    return {};
  }

  // Sends a request and returns the future of its reply, which fails with
  // std::errc::timed_out if `deadline` passes first (the default: never).
  weft::Future<Reply> Call(Method method, std::string payload,
                           weft::Deadline deadline = {}) {
    weft::Promise<Reply> promise;
    weft::Future<Reply> future = promise.GetFuture();
    if (payload.size() > kMaxPayload) {
      promise.SetValue(Reply{RpcError::kFrameTooLarge, {}});
      return future;
    }
    Frame request{0, static_cast<std::uint8_t>(method), std::move(payload)};
    {
      std::unique_lock<weft::FiberMutex> lock(mutex_);
      if (closed_) {
        const std::error_code error = closed_error_;
        lock.unlock();  // SetValue runs continuations: never under our lock
        promise.SetValue(Reply{error, {}});
        return future;
      }
      request.id = next_id_++;
      Pending& call =
          pending_.emplace(request.id, Pending{std::move(promise)}).first->second;
      if (!deadline.IsNever()) {
        call.timer =
            weft::SetTimer(deadline.TimePoint(), [this, id = request.id] { Expire(id); });
      }
    }
    std::error_code error;
    {
      std::lock_guard<weft::FiberMutex> lock(write_mutex_);
      error = WriteFrame(stream_, request, deadline);
    }
    if (error) {
      // Part of the frame may have gone out, so the stream is out of step:
      // end the connection. The reader then fails every call, this one too.
      ::shutdown(stream_.fd(), SHUT_RDWR);
    }
    return future;
  }

  // Ends the connection: calls still waiting fail with
  // RpcError::kConnectionClosed, later calls at once. Waits for the reader
  // fiber to finish. Closing a closed channel does nothing.
  void Close() {
    if (!reader_.Joinable()) return;
    // shutdown(2), not Stream::Close(): the reader is using the stream; it
    // reads the end of the stream, fails what is pending and returns.
    ::shutdown(stream_.fd(), SHUT_RDWR);
    reader_.Join();
  }

  // Replies that came after their call had timed out, and were dropped.
  std::uint64_t late_replies() {
    std::lock_guard<weft::FiberMutex> lock(mutex_);
    return late_replies_;
  }

 private:
  struct Pending {
    weft::Promise<Reply> promise;
    weft::TimerId timer = 0;  // 0: no deadline
  };

  // The reader fiber.
  void ReadReplies() {
    Frame frame;
    std::error_code error;
    while (!(error = ReadFrame(stream_, frame))) {
      Reply reply{{}, std::move(frame.payload)};
      if (frame.code != 0) reply.error = static_cast<RpcError>(frame.code);
      Complete(frame.id, std::move(reply));
    }
    if (error == weft::io::Error::kEndOfStream) error = RpcError::kConnectionClosed;
    // After a read error or a refused frame the stream is out of step: end
    // the connection for the server too.
    ::shutdown(stream_.fd(), SHUT_RDWR);
    FailAll(error);
  }

  void Complete(std::uint64_t id, Reply reply) {
    decltype(pending_)::node_type call;
    {
      std::lock_guard<weft::FiberMutex> lock(mutex_);
      call = pending_.extract(id);
      if (call.empty()) {
        ++late_replies_;  // the deadline passed first: nobody waits for it
        return;
      }
    }
    // The call is ours now. If its timer is firing at this moment, KillTimer
    // waits for the callback, which finds nothing to do.
    if (call.mapped().timer != 0) weft::KillTimer(call.mapped().timer);
    call.mapped().promise.SetValue(std::move(reply));
  }

  // A call's deadline timer (it runs in a fiber of its own).
  void Expire(std::uint64_t id) {
    decltype(pending_)::node_type call;
    {
      std::lock_guard<weft::FiberMutex> lock(mutex_);
      call = pending_.extract(id);
    }
    if (call.empty()) return;  // the reply came first; Complete kills this timer
    // Releases the timer's id; from its own callback KillTimer does not wait.
    weft::KillTimer(call.mapped().timer);
    call.mapped().promise.SetValue(Reply{std::make_error_code(std::errc::timed_out), {}});
  }

  void FailAll(std::error_code error) {
    std::unordered_map<std::uint64_t, Pending> calls;
    {
      std::lock_guard<weft::FiberMutex> lock(mutex_);
      closed_ = true;
      closed_error_ = error;
      calls.swap(pending_);
    }
    for (auto& [id, call] : calls) {
      if (call.timer != 0) weft::KillTimer(call.timer);
      call.promise.SetValue(Reply{error, {}});
    }
  }

  weft::io::TcpStream stream_;
  weft::Fiber reader_;
  weft::FiberMutex write_mutex_;  // one frame at a time on the stream

  weft::FiberMutex mutex_;  // guards what follows
  bool closed_ = true;      // until Connect, and again once the connection ends
  std::error_code closed_error_ = RpcError::kConnectionClosed;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, Pending> pending_;
  std::uint64_t late_replies_ = 0;
};

}  // namespace rpc

#endif  // WEFT_EXAMPLES_RPC_CHANNEL_H_
