// The wire format of the example RPC protocol, shared by weft_rpc_server and
// the multiplexing client (channel.h).
//
// Every message, request or reply, is one frame:
//
//   offset  size  field
//   0       4     length of the rest of the frame (9 + payload size), big-endian
//   4       8     call id, big-endian: chosen by the client, echoed by the reply
//   12      1     code: in a request the Method, in a reply the status
//                 (0 = ok, otherwise an RpcError)
//   13      ...   payload (at most kMaxPayload bytes)
//
// A connection carries many calls at once: the client may send a request
// before the replies to earlier ones came back, and the server replies in
// whatever order its handlers finish. The call id matches a reply to its call.
//
// A frame whose length is over the limit is not read: the reader answers it
// (a reply with RpcError::kFrameTooLarge and the frame's id, when it is the
// server) and closes the connection, since it cannot find the next frame
// without reading this one.
#ifndef WEFT_EXAMPLES_RPC_FRAME_H_
#define WEFT_EXAMPLES_RPC_FRAME_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>

#include "runtime/deadline.h"
#include "runtime/io/tcp.h"

namespace rpc {

constexpr std::size_t kHeaderSize = 13;
constexpr std::uint32_t kMaxPayload = 1 << 20;  // 1 MiB

enum class Method : std::uint8_t {
  // Replies with the request's payload.
  kEcho = 1,
  // The payload is a 4-byte big-endian count of milliseconds, at most
  // kMaxSleepMs; the handler sleeps that long (this_fiber::SleepFor), then
  // replies with an empty payload. Shows deadlines and out-of-order replies.
  kSleep = 2,
  // The server calls "echo" with the payload on its two backends at once and
  // replies with their two replies, concatenated.
  kFanout = 3,
};

constexpr std::uint32_t kMaxSleepMs = 1000;

// The reasons a call fails, other than I/O errors (std::errc::timed_out, ...).
// Values 1..255 travel as a reply's status byte.
enum class RpcError {
  kUnknownMethod = 1,
  kBadRequest = 2,
  kFrameTooLarge = 3,
  kBackendFailed = 4,
  // Not sent: the connection ended before the reply came.
  kConnectionClosed = 100,
};

class RpcErrorCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "rpc"; }
  std::string message(int value) const override {
    switch (static_cast<RpcError>(value)) {
      case RpcError::kUnknownMethod:
        return "the server does not know the method";
      case RpcError::kBadRequest:
        return "the server cannot use the request's payload";
      case RpcError::kFrameTooLarge:
        return "frame larger than the 1 MiB payload limit";
      case RpcError::kBackendFailed:
        return "a backend call of the server failed";
      case RpcError::kConnectionClosed:
        return "the connection closed before the reply came";
    }
    return "rpc error " + std::to_string(value);
  }
};

inline const std::error_category& RpcCategory() {
  static const RpcErrorCategory category;
  return category;
}

inline std::error_code make_error_code(RpcError error) {
  return {static_cast<int>(error), RpcCategory()};
}

}  // namespace rpc

namespace std {
template <>
struct is_error_code_enum<rpc::RpcError> : true_type {};
}  // namespace std

namespace rpc {

struct Frame {
  std::uint64_t id = 0;
  std::uint8_t code = 0;  // a Method in requests, a status in replies
  std::string payload;
};

inline void PutBigEndian(unsigned char* out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, value >>= 8)
    out[i] = static_cast<unsigned char>(value);
}

inline std::uint64_t GetBigEndian(const unsigned char* in, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = value << 8 | in[i];
  return value;
}

// Reads one frame into `frame`. Returns the stream's error
// (weft::io::Error::kEndOfStream when the peer closed, std::errc::timed_out
// at the deadline, ...) or RpcError::kFrameTooLarge, when frame.id and
// frame.code are those of the frame refused and its payload is left unread.
inline std::error_code ReadFrame(weft::io::Stream& stream, Frame& frame,
                                 weft::Deadline deadline = {}) {
  unsigned char header[kHeaderSize];
  if (const auto result = stream.ReadFull(header, sizeof(header), deadline);
      result.error) {
    return result.error;
  }
  const auto length = static_cast<std::uint32_t>(GetBigEndian(header, 4));
  frame.id = GetBigEndian(header + 4, 8);
  frame.code = header[12];
  if (length < kHeaderSize - 4) return std::make_error_code(std::errc::bad_message);
  if (length - (kHeaderSize - 4) > kMaxPayload) return RpcError::kFrameTooLarge;
  frame.payload.resize(length - (kHeaderSize - 4));
  return stream.ReadFull(frame.payload.data(), frame.payload.size(), deadline).error;
}

// Writes one frame in one system call (header and payload gathered). The
// caller serializes writers: two frames written at once would interleave.
inline std::error_code WriteFrame(weft::io::Stream& stream, const Frame& frame,
                                  weft::Deadline deadline = {}) {
  unsigned char header[kHeaderSize];
  PutBigEndian(header, kHeaderSize - 4 + frame.payload.size(), 4);
  PutBigEndian(header + 4, frame.id, 8);
  header[12] = frame.code;
  const iovec parts[2] = {
      {header, sizeof(header)},
      {const_cast<char*>(frame.payload.data()), frame.payload.size()}};
  return stream.WriteAllV(parts, 2, deadline).error;
}

}  // namespace rpc

#endif  // WEFT_EXAMPLES_RPC_FRAME_H_
