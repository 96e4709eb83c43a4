// The control socket's client side (control.h): the blocking request `pgnap status`, `wake`,
// `sleep` and `reload` make (control_call), and the probe the gateway makes at start-up to
// refuse a second gateway on the same socket. The server is control.cpp.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "daemon/control.h"

namespace pgnap::daemon {

namespace {

// `path` as a Unix socket address: false if it is empty or too long for one.
bool unix_address(const std::string& path, sockaddr_un& out) {
  if (path.empty() || path.size() >= sizeof out.sun_path) return false;
  out.sun_family = AF_UNIX;
  std::memcpy(out.sun_path, path.data(), path.size());
  return true;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits for `events` on `fd` until `deadline`: false on a timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return true;  // the next call reports the error
  }
}

}  // namespace

ControlCallResult control_call(const std::string& path, const std::string& request,
                               std::chrono::milliseconds connect_timeout, std::chrono::milliseconds reply_timeout) {
  using Status = ControlCallResult::Status;
  ControlCallResult result;
  sockaddr_un addr{};
  if (!unix_address(path, addr)) {
    result.error = "not a usable Unix socket path: \"" + path + "\"";
    return result;
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    result.error = std::string("socket: ") + std::strerror(errno);
    return result;
  }
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close_fd{fd};

  auto fail = [&](int error) {
    if (error == ENOENT || error == ECONNREFUSED || error == ENOTDIR) result.status = Status::kMissing;
    else if (error == EACCES || error == EPERM) result.status = Status::kDenied;
    else result.status = Status::kError;
    result.error = std::strerror(error);
    return result;
  };
  // A Unix socket connects at once or fails, except with a full backlog (EAGAIN): retry
  // until the deadline.
  const auto connect_deadline = Clock::now() + connect_timeout;
  for (;;) {
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    const int error = errno;
    if (error == EINTR) continue;
    if (error != EAGAIN && error != EINPROGRESS) return fail(error);
    if (Clock::now() >= connect_deadline) {
      result.status = Status::kTimeout;
      result.error = "no connection within " + config::format_duration(connect_timeout);
      return result;
    }
    ::usleep(20 * 1000);
  }

  const auto deadline = Clock::now() + reply_timeout;
  std::string out = request + "\n";
  std::size_t sent = 0;
  while (sent < out.size()) {
    if (!wait_for(fd, POLLOUT, deadline)) {
      result.status = Status::kTimeout;
      result.error = "the daemon did not read the request within " + config::format_duration(reply_timeout);
      return result;
    }
    const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return fail(errno);
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  char chunk[4096];
  for (;;) {
    const auto newline = in.find('\n');
    if (newline != std::string::npos) {
      result.status = Status::kOk;
      result.reply = in.substr(0, newline);
      return result;
    }
    if (!wait_for(fd, POLLIN, deadline)) {
      result.status = Status::kTimeout;
      result.error = "no response within " + config::format_duration(reply_timeout);
      return result;
    }
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return fail(errno);
    }
    if (n == 0) {
      result.status = Status::kError;
      result.error = "the daemon closed the connection without a response";
      return result;
    }
    in.append(chunk, static_cast<std::size_t>(n));
    // A response is one line; a bound keeps a confused peer from filling memory.
    if (in.size() > 64 * 1024 * 1024) {
      result.status = Status::kError;
      result.error = "response too long";
      return result;
    }
  }
}

int probe_control_socket(const std::string& path) {
  sockaddr_un addr{};
  if (!unix_address(path, addr)) return EINVAL;
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) return errno;
  const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int error = rc == 0 ? 0 : errno;
  ::close(probe);
  return (rc == 0 || error == EAGAIN || error == EINPROGRESS) ? 0 : error;
}

}  // namespace pgnap::daemon
