// The control socket end to end (docs/control.md): `pgnap status`, `wake`, `reload` against
// the real daemon, hostile lines on the socket, and a user without access turned away.
// The protocol's corner cases one by one are unit tests (tests/daemon/control_test.cpp).
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstring>
#include <optional>
#include <string>

#include "tests/integration/harness.h"

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;
namespace json = boost::json;

CommandResult pgnap(std::vector<std::string> args, Millis timeout = 60s) {
  args.insert(args.begin(), pgnap_binary());
  return run_command(args, timeout);
}

// A raw connection to the control socket, for bytes no pgnap command would send.
class ControlConnection {
 public:
  explicit ControlConnection(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~ControlConnection() { ::close(fd_); }
  ControlConnection(const ControlConnection&) = delete;
  ControlConnection& operator=(const ControlConnection&) = delete;
  [[nodiscard]] bool connected() const { return connected_; }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // The next response line, or nullopt when the daemon closed the connection (or 10 s passed).
  std::optional<std::string> line() {
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string l = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return l;
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

json::object parse_object(const std::string& text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = GatewayOptions::for_cluster(cluster_);
    options_.idle_timeout = "60s";
    gateway_.emplace(options_, &cluster_);
    ASSERT_TRUE(gateway_->wait_for_log("adopted asleep", 15s)) << gateway_->log();
    ASSERT_TRUE(gateway_->wait_for_log("control socket " + gateway_->control_socket(), 5s)) << gateway_->log();
  }

  Cluster cluster_;
  GatewayOptions options_;
  std::optional<Gateway> gateway_;
};

TEST_F(ControlTest, StatusWhileAsleepIsJsonWithTheVersionAndEveryField) {
  const auto r = pgnap({"status", "-c", gateway_->config_path(), "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const auto reply = parse_object(r.out);
  ASSERT_FALSE(reply.empty()) << r.out;
  EXPECT_EQ(reply.at("version"), 1);
  EXPECT_EQ(reply.at("ok"), true);
  EXPECT_TRUE(reply.contains("now"));
  const auto& instances = reply.at("instances").as_array();
  ASSERT_EQ(instances.size(), 1u);
  const auto& main = instances[0].as_object();
  EXPECT_EQ(main.at("name"), "main");
  EXPECT_EQ(main.at("state"), "asleep");
  for (const char* field : {"since", "for_ms", "mode", "last_wake", "next", "waiting", "sessions"}) {
    EXPECT_TRUE(main.contains(field)) << field << " missing in " << r.out;
  }
  EXPECT_EQ(main.at("waiting"), 0u);
  EXPECT_TRUE(main.at("sessions").as_array().empty());
  EXPECT_TRUE(main.at("next").is_array());
}

TEST_F(ControlTest, StatusTableShowsEachInstance) {
  const auto r = pgnap({"status", "-c", gateway_->config_path()});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("instance main: asleep"));
  EXPECT_THAT(r.out, HasSubstr("waiting:"));
  EXPECT_THAT(r.out, HasSubstr("sessions:"));
  // --socket names the socket without a configuration file.
  const auto by_socket = pgnap({"status", "--socket", gateway_->control_socket()});
  EXPECT_EQ(by_socket.exit_code, 0) << by_socket.describe();
  EXPECT_THAT(by_socket.out, HasSubstr("instance main: asleep"));
}

TEST_F(ControlTest, MalformedMessagesGetAnErrorAndClientsAreStillServed) {
  {
    ControlConnection control(gateway_->control_socket());
    ASSERT_TRUE(control.connected());
    for (const std::string& bad :
         std::vector<std::string>{"hello", "{\"version\": 1", "{\"version\": 1, \"command\": \"format c:\"}",
                                  "{\"version\": 99, \"command\": \"status\"}",
                                  "{\"version\": 1, \"command\": \"wake\", \"instance\": \"nope\"}",
                                  "{\"version\": 1, \"command\": \"wake\", \"instance\": \"main\", \"for\": \"x\"}",
                                  std::string("\0\xff\xfe{}", 5)}) {
      ASSERT_TRUE(control.send(bad + "\n"));
      const auto line = control.line();
      ASSERT_TRUE(line.has_value()) << "no answer to " << bad;
      const auto reply = parse_object(*line);
      EXPECT_EQ(reply.at("ok"), false) << *line;
      EXPECT_TRUE(reply.contains("error")) << *line;
    }
    // The same connection still answers a good request.
    ASSERT_TRUE(control.send("{\"version\": 1, \"command\": \"status\"}\n"));
    const auto line = control.line();
    ASSERT_TRUE(line.has_value());
    EXPECT_EQ(parse_object(*line).at("ok"), true) << *line;
  }
  {
    // A line beyond 64 KiB: an error, and the connection is closed.
    ControlConnection control(gateway_->control_socket());
    ASSERT_TRUE(control.connected());
    control.send(std::string(70 * 1024, '{'));
    const auto line = control.line();
    ASSERT_TRUE(line.has_value());
    EXPECT_THAT(*line, HasSubstr("longer than 65536 bytes"));
    EXPECT_FALSE(control.line().has_value());
  }
  // The daemon keeps serving: the control socket, and a client through the gateway.
  EXPECT_EQ(pgnap({"status", "-c", gateway_->config_path()}).exit_code, 0);
  const auto r = psql(gateway_->conninfo(), "SELECT 40 + 2");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("42"));
  EXPECT_TRUE(gateway_->running());
}

TEST_F(ControlTest, APeerWithoutAccessIsRefused) {
  // The socket is root's (the test runs as root), mode 0660; its directory is made passable so
  // that only the socket's own mode decides.
  ASSERT_TRUE(running_as_root()) << "this test needs root to run pgnap status as nobody";
  const std::string socket = gateway_->control_socket();
  const std::string dir = socket.substr(0, socket.rfind('/'));
  ASSERT_EQ(::chmod(dir.c_str(), 0711), 0);
  struct stat st {};
  ASSERT_EQ(::stat(socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_uid, 0u);
  const auto r = run_command({"runuser", "-u", "nobody", "--", pgnap_binary(), "status", "--socket", socket}, 30s);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_THAT(r.err, HasSubstr("permission denied: " + socket + "; run as the pgnap user or a member of its group"));
  // Root may.
  EXPECT_EQ(pgnap({"status", "--socket", socket}).exit_code, 0);
}

TEST_F(ControlTest, StatusWithoutARunningGatewaySaysSo) {
  const std::string missing = cluster_.dir() + "/no-such.sock";
  const auto r = pgnap({"status", "--socket", missing});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_THAT(r.err, HasSubstr("is pgnap running? control_socket = " + missing));
}

TEST_F(ControlTest, ReloadAppliesTheFileAndSaysWhatItDid) {
  auto r = pgnap({"reload", "-c", gateway_->config_path()});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("configuration reloaded"));
  EXPECT_TRUE(gateway_->wait_for_log("control: reload asked by uid 0", 5s)) << gateway_->log();
  // A file that does not load: refused, with the error, and the running configuration stays.
  const std::string good = read_file(gateway_->config_path());
  write_file(gateway_->config_path(), good + "\n[instances.main]\nnonsense = 1\n");
  r = pgnap({"reload", "--socket", gateway_->control_socket()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_THAT(r.err, HasSubstr("keeping the running configuration"));
  write_file(gateway_->config_path(), good);
  const auto q = psql(gateway_->conninfo(), "SELECT 1");
  EXPECT_EQ(q.exit_code, 0) << q.describe();
}

TEST_F(ControlTest, WakeForADurationStartsTheCluster) {
  ASSERT_FALSE(cluster_.is_running());
  const auto r = pgnap({"wake", "main", "--for", "5s", "-c", gateway_->config_path()}, 60s);
  EXPECT_EQ(r.exit_code, 0) << r.describe() << "\n" << gateway_->log();
  EXPECT_TRUE(cluster_.is_running());
  EXPECT_TRUE(gateway_->wait_for_log("control: wake \"main\" for 5s asked by uid 0", 5s)) << gateway_->log();
}

TEST_F(ControlTest, UsageErrorsExitWith2) {
  EXPECT_EQ(pgnap({"wake", "-c", gateway_->config_path()}).exit_code, 2);
  EXPECT_EQ(pgnap({"wake", "main", "--for", "soon", "-c", gateway_->config_path()}).exit_code, 2);
  EXPECT_EQ(pgnap({"sleep", "main", "--for", "5s", "-c", gateway_->config_path()}).exit_code, 2);
  EXPECT_EQ(pgnap({"status", "--format", "csv", "-c", gateway_->config_path()}).exit_code, 2);
  EXPECT_EQ(pgnap({"status", "extra-argument", "-c", gateway_->config_path()}).exit_code, 2);
}

}  // namespace
}  // namespace pgnap::it
