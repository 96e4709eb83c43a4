// What pgnap tells systemd and takes from it, without systemd: a datagram socket of the
// test's own stands in for NOTIFY_SOCKET (READY=1 once listening, RELOADING=1 then READY=1
// around a SIGHUP, STOPPING=1 on SIGTERM, WATCHDOG=1 when WATCHDOG_USEC is set), and a
// listening socket the test opens is passed as systemd passes pgnap.socket's (LISTEN_FDS).
// Logs under systemd (JOURNAL_STREAM) carry syslog priority prefixes and no timestamps.
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <set>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

// A NOTIFY_SOCKET: an AF_UNIX datagram socket collecting what pgnap sends.
class NotifySocket {
 public:
  NotifySocket() : dir_(false), path_(dir_.path() + "/notify") {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot bind " + path_ + ": " + std::strerror(errno));
    }
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }

  // Waits for a datagram containing `needle` (each datagram is "KEY=VALUE\n..."); every
  // datagram read is kept in messages().
  bool wait_for(std::string_view needle, Millis timeout) {
    for (const auto& m : messages_) {
      if (m.find(needle) != std::string::npos && consumed_.insert(&m - messages_.data()).second) return true;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<long>(left.count(), 1))) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      messages_.emplace_back(buf, static_cast<std::size_t>(n));
      if (messages_.back().find(needle) != std::string::npos) {
        consumed_.insert(messages_.size() - 1);
        return true;
      }
    }
    return false;
  }
  [[nodiscard]] std::string all() const {
    std::string out;
    for (const auto& m : messages_) out += "[" + m + "] ";
    return out;
  }

 private:
  TempDir dir_;
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> messages_;
  std::set<std::size_t> consumed_;
};

TEST(SystemdNotifyTest, ReadyReloadingWatchdogAndStoppingAreSentAtTheRightMoments) {
  Cluster cluster;
  NotifySocket notify;
  auto options = GatewayOptions::for_cluster(cluster);
  options.env = {{"NOTIFY_SOCKET", notify.path()}, {"WATCHDOG_USEC", "300000"}};
  Gateway gateway(options, &cluster);

  ASSERT_TRUE(notify.wait_for("READY=1", 10s)) << notify.all();
  // WatchdogSec=0.3s: pings at least every 0.15 s, so two within a second.
  EXPECT_TRUE(notify.wait_for("WATCHDOG=1", 1s)) << notify.all();
  EXPECT_TRUE(notify.wait_for("WATCHDOG=1", 1s)) << notify.all();

  ASSERT_EQ(::kill(gateway.pid(), SIGHUP), 0);
  EXPECT_TRUE(notify.wait_for("RELOADING=1", 10s)) << notify.all();
  EXPECT_TRUE(notify.wait_for("READY=1", 10s)) << "no READY=1 after the reload: " << notify.all();

  EXPECT_EQ(gateway.terminate(SIGTERM, 15s), 0) << gateway.log();
  EXPECT_TRUE(notify.wait_for("STOPPING=1", 1s)) << notify.all();
}

TEST(SystemdNotifyTest, WithoutWatchdogUsecNoWatchdogPingsAreSent) {
  Cluster cluster;
  NotifySocket notify;
  auto options = GatewayOptions::for_cluster(cluster);
  options.env = {{"NOTIFY_SOCKET", notify.path()}};
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(notify.wait_for("READY=1", 10s)) << notify.all();
  EXPECT_FALSE(notify.wait_for("WATCHDOG=1", 1500ms)) << notify.all();
}

// pgnap.socket: systemd passes a listening socket as fd 3 with LISTEN_FDS=1 and LISTEN_PID set
// to pgnap's pid; pgnap accepts on it instead of opening [gateway] listen.
TEST(SystemdNotifyTest, SocketActivationServesOnThePassedSocket) {
  Cluster cluster;
  // The socket systemd would have opened: bound and listening before pgnap starts, without
  // close-on-exec so the child inherits it.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 64), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::uint16_t port = ntohs(addr.sin_port);

  auto options = GatewayOptions::for_cluster(cluster);
  const std::string n = std::to_string(fd);
  // sh sets LISTEN_PID to its own pid, which exec hands on to pgnap, and moves the socket to 3.
  options.command_prefix = {"sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\" 3<&" + n + " " + n + "<&-", "sh"};
  Gateway gateway(options, &cluster);
  ::close(fd);

  EXPECT_EQ(gateway.port(), port) << "pgnap did not take the passed socket: " << gateway.log();
  EXPECT_THAT(gateway.log(), HasSubstr("(socket activation)"));
  const auto r = psql("host=127.0.0.1 port=" + std::to_string(port) + " user=postgres dbname=postgres",
                      "select 'activated'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "activated\n");
  // [gateway] listen (127.0.0.1:0) was not opened as well: one listening socket only.
  const auto ss = run_command({"ss", "-ltnpH"});
  EXPECT_EQ(count_lines_containing(ss.out, "pid=" + std::to_string(gateway.pid()) + ","), 1u) << ss.out;
}

// Under systemd (JOURNAL_STREAM names stderr), lines carry "<N>" priority prefixes for the
// journal and no timestamp of their own.
TEST(SystemdNotifyTest, LogsUnderJournaldHavePriorityPrefixesAndNoTimestamps) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  // JOURNAL_STREAM is "DEVICE:INODE" of stderr; the harness sends stderr to the log file, so
  // a wrapper fills it in from that file's stat before exec.
  options.command_prefix = {"sh", "-c", "JOURNAL_STREAM=$(stat -L -c '%d:%i' /proc/self/fd/2) exec \"$@\"", "sh"};
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  const std::string log = gateway.log();
  EXPECT_THAT(log, ::testing::ContainsRegex("(^|\n)<6>[^\n]*listening on 127.0.0.1:")) << log;
  EXPECT_THAT(log, ::testing::Not(::testing::ContainsRegex("(^|\n)<[0-7]>20[0-9][0-9]-"))) << log;
}

}  // namespace
}  // namespace pgnap::it
