// The control socket's protocol (daemon/control.h) against a fake handler, on a real socket
// file in a temporary directory and a real io_context running on a thread of its own.
#include "daemon/control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

namespace pgnap::daemon {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

class FakeHandler : public ControlHandler {
 public:
  bool has_instance(const std::string& name) const override { return name == "main"; }
  json::object status() override {
    InstanceStatus s;
    s.name = "main";
    s.state = "awake";
    s.mode = "gateway";
    s.since = now - 90s;
    s.waiting = 2;
    s.last_wake = InstanceStatus::LastWake{now - 100s, WakeCause::kClient, {"alice", "app", "psql", "unix"}, "", "ok"};
    s.next.push_back({"suspend", now + 10min, "idle_timeout"});
    SessionStatus session;
    session.id = 7;
    session.client = {"alice", "app", "psql", "127.0.0.1:5000"};
    session.state = "idle in transaction";
    session.idle_for = 1500ms;
    session.connected_for = 60s;
    session.keeps_awake = true;
    session.why = "in a transaction";
    s.sessions.push_back(session);
    return status_json({s}, now);
  }
  asio::awaitable<ControlReply> wake(std::string instance, config::Duration hold, ControlPeer peer) override {
    woken = instance;
    held = hold;
    last_peer = peer;
    co_return ControlReply{true, "\"main\" is awake", {}};
  }
  ControlReply sleep(std::string instance, ControlPeer peer) override {
    last_peer = peer;
    ControlReply reply{false, "\"" + instance + "\" is in use by 1 session", {}};
    SessionStatus s;
    s.id = 7;
    s.state = "active";
    reply.data["blocking"] = json::array{session_json(s)};
    return reply;
  }
  ControlReply reload(ControlPeer peer) override {
    last_peer = peer;
    return {true, "configuration reloaded: 0 change(s) applied", {}};
  }

  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  std::string woken;
  config::Duration held{-1};
  std::optional<ControlPeer> last_peer;
};

// A blocking client connection with a receive timeout, for the raw protocol.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { ::close(fd_); }
  [[nodiscard]] bool connected() const { return connected_; }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // The next line, or nullopt at the end of the stream (or after 5 s).
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
  json::object reply() {
    const auto l = line();
    if (!l) return {};
    return json::parse(*l).as_object();
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

class ControlServerTest : public ::testing::Test {
 protected:
  void start(ControlServer::Limits limits = {}) {
    server_ = std::make_unique<ControlServer>(io_, path_, handler_, limits);
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) {
      std::promise<void> stopped;
      asio::post(io_, [&] {
        server_->stop();
        stopped.set_value();
      });
      if (thread_.joinable()) stopped.get_future().wait();
    }
    work_.reset();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  static std::string make_dir() {
    char pattern[] = "/tmp/pgnap-control-XXXXXX";
    const char* d = ::mkdtemp(pattern);
    return d != nullptr ? d : "/tmp";
  }
  json::object call(const std::string& request) {
    const auto r = control_call(path_, request, 2s, 5s);
    EXPECT_EQ(r.status, ControlCallResult::Status::kOk) << r.error;
    if (r.status != ControlCallResult::Status::kOk) return {};
    return json::parse(r.reply).as_object();
  }

  std::string dir_ = make_dir();
  std::string path_ = dir_ + "/control.sock";
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  FakeHandler handler_;
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
};

TEST_F(ControlServerTest, SocketFileIsASocketOfMode0660) {
  start();
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(ControlServerTest, StatusAnswersWithVersionAndEveryDocumentedField) {
  start();
  const auto reply = call(R"({"version": 1, "command": "status"})");
  EXPECT_EQ(reply.at("version"), 1);
  EXPECT_EQ(reply.at("ok"), true);
  EXPECT_FALSE(reply.at("now").as_string().empty());
  const auto& instances = reply.at("instances").as_array();
  ASSERT_EQ(instances.size(), 1u);
  const auto& i = instances[0].as_object();
  EXPECT_EQ(i.at("name"), "main");
  EXPECT_EQ(i.at("state"), "awake");
  EXPECT_EQ(i.at("mode"), "gateway");
  EXPECT_EQ(i.at("for_ms"), 90000);
  EXPECT_EQ(i.at("waiting"), 2u);
  EXPECT_EQ(i.at("since").as_string().back(), 'Z');
  const auto& wake = i.at("last_wake").as_object();
  EXPECT_EQ(wake.at("cause"), "client");
  EXPECT_EQ(wake.at("ago_ms"), 100000);
  EXPECT_EQ(wake.at("outcome"), "ok");
  EXPECT_EQ(wake.at("client").as_object().at("user"), "alice");
  EXPECT_EQ(wake.at("client").as_object().at("application_name"), "psql");
  const auto& next = i.at("next").as_array().at(0).as_object();
  EXPECT_EQ(next.at("what"), "suspend");
  EXPECT_EQ(next.at("in_ms"), 600000);
  EXPECT_EQ(next.at("detail"), "idle_timeout");
  const auto& s = i.at("sessions").as_array().at(0).as_object();
  EXPECT_EQ(s.at("id"), 7u);
  EXPECT_EQ(s.at("user"), "alice");
  EXPECT_EQ(s.at("database"), "app");
  EXPECT_EQ(s.at("application_name"), "psql");
  EXPECT_EQ(s.at("client_address"), "127.0.0.1:5000");
  EXPECT_EQ(s.at("state"), "idle in transaction");
  EXPECT_EQ(s.at("idle_for_ms"), 1500);
  EXPECT_EQ(s.at("connected_for_ms"), 60000);
  EXPECT_EQ(s.at("keeps_awake"), true);
  EXPECT_EQ(s.at("why"), "in a transaction");
}

TEST_F(ControlServerTest, StatusOfAnUnknownInstanceIsAnError) {
  start();
  const auto reply = call(R"({"version": 1, "command": "status", "instance": "nope"})");
  EXPECT_EQ(reply.at("ok"), false);
  EXPECT_NE(std::string(reply.at("error").as_string()).find("no instance \"nope\""), std::string::npos);
}

TEST_F(ControlServerTest, MalformedLinesGetAnErrorAndTheConnectionGoesOn) {
  start();
  RawClient client(path_);
  ASSERT_TRUE(client.connected());
  for (const std::string bad : {"not json at all", "[1, 2, 3]", "{\"version\": 1, \"command\": ", "\"status\"",
                                "{\"version\": 1}", "{\"version\": 1, \"command\": 42}", "\x01\x02\xff\xfe"}) {
    ASSERT_TRUE(client.send(bad + "\n"));
    const auto reply = client.reply();
    ASSERT_FALSE(reply.empty()) << "no reply to " << bad;
    EXPECT_EQ(reply.at("version"), 1) << bad;
    EXPECT_EQ(reply.at("ok"), false) << bad;
    EXPECT_FALSE(reply.at("error").as_string().empty()) << bad;
  }
  ASSERT_TRUE(client.send("{\"version\": 1, \"command\": \"status\"}\n"));
  EXPECT_EQ(client.reply().at("ok"), true);
}

TEST_F(ControlServerTest, SeveralRequestsOnOneConnectionAreAnsweredInOrder) {
  start();
  RawClient client(path_);
  ASSERT_TRUE(client.connected());
  // Three requests in one write, a blank line and a CRLF among them.
  ASSERT_TRUE(
      client.send("{\"version\": 1, \"command\": \"reload\"}\n\n"
                  "{\"version\": 1, \"command\": \"wake\", \"instance\": \"main\", \"for\": \"10m\"}\r\n"
                  "{\"version\": 1, \"command\": \"sleep\", \"instance\": \"main\"}\n"));
  const auto reload = client.reply();
  EXPECT_EQ(reload.at("ok"), true);
  EXPECT_EQ(reload.at("message"), "configuration reloaded: 0 change(s) applied");
  const auto wake = client.reply();
  EXPECT_EQ(wake.at("ok"), true);
  EXPECT_EQ(wake.at("message"), "\"main\" is awake");
  const auto sleep = client.reply();
  EXPECT_EQ(sleep.at("ok"), false);
  EXPECT_EQ(sleep.at("blocking").as_array().at(0).as_object().at("id"), 7u);
  EXPECT_EQ(handler_.woken, "main");
  EXPECT_EQ(handler_.held, 10min);
}

TEST_F(ControlServerTest, UnknownCommandIsAnError) {
  start();
  const auto reply = call(R"({"version": 1, "command": "explode"})");
  EXPECT_EQ(reply.at("ok"), false);
  EXPECT_NE(std::string(reply.at("error").as_string()).find("unknown command \"explode\""), std::string::npos);
}

TEST_F(ControlServerTest, AnotherVersionOrNoneIsAnError) {
  start();
  auto reply = call(R"({"version": 2, "command": "status"})");
  EXPECT_EQ(reply.at("ok"), false);
  EXPECT_EQ(reply.at("version"), 1);
  EXPECT_NE(std::string(reply.at("error").as_string()).find("protocol version 2"), std::string::npos);
  reply = call(R"({"command": "status"})");
  EXPECT_EQ(reply.at("ok"), false);
  EXPECT_NE(std::string(reply.at("error").as_string()).find("missing \"version\""), std::string::npos);
  reply = call(R"({"version": "1", "command": "status"})");
  EXPECT_EQ(reply.at("ok"), false);
}

TEST_F(ControlServerTest, WakeNeedsAKnownInstanceAndAValidDuration) {
  start();
  auto reply = call(R"({"version": 1, "command": "wake"})");
  EXPECT_EQ(reply.at("ok"), false);
  reply = call(R"({"version": 1, "command": "wake", "instance": "other"})");
  EXPECT_EQ(reply.at("ok"), false);
  EXPECT_NE(std::string(reply.at("error").as_string()).find("no instance \"other\""), std::string::npos);
  for (const std::string bad : {"\"10\"", "\"-5m\"", "\"soon\"", "600", "null"}) {
    reply = call(R"({"version": 1, "command": "wake", "instance": "main", "for": )" + bad + "}");
    EXPECT_EQ(reply.at("ok"), false) << bad;
    EXPECT_NE(std::string(reply.at("error").as_string()).find("bad \"for\""), std::string::npos) << bad;
  }
  EXPECT_TRUE(handler_.woken.empty());
  reply = call(R"({"version": 1, "command": "wake", "instance": "main"})");
  EXPECT_EQ(reply.at("ok"), true);
  EXPECT_EQ(handler_.held, 0ms);
}

TEST_F(ControlServerTest, ThePeersCredentialsReachTheHandler) {
  start();
  call(R"({"version": 1, "command": "reload"})");
  ASSERT_TRUE(handler_.last_peer.has_value());
  EXPECT_EQ(handler_.last_peer->uid, ::geteuid());
  EXPECT_EQ(handler_.last_peer->gid, ::getegid());
  EXPECT_EQ(handler_.last_peer->pid, ::getpid());
  EXPECT_EQ(handler_.last_peer->to_string(),
            "uid " + std::to_string(::geteuid()) + " (pid " + std::to_string(::getpid()) + ")");
}

TEST_F(ControlServerTest, AnOversizedLineGetsAnErrorAndTheConnectionIsClosed) {
  ControlServer::Limits limits;
  limits.max_line = 1024;
  start(limits);
  RawClient client(path_);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.send(std::string(4000, 'x')));
  const auto reply = client.reply();
  ASSERT_FALSE(reply.empty());
  EXPECT_EQ(reply.at("ok"), false);
  EXPECT_NE(std::string(reply.at("error").as_string()).find("longer than 1024 bytes"), std::string::npos);
  EXPECT_FALSE(client.line().has_value());  // closed
  // The server goes on.
  EXPECT_EQ(call(R"({"version": 1, "command": "status"})").at("ok"), true);
}

TEST_F(ControlServerTest, AnIdleConnectionIsClosedAtTheReadDeadline) {
  ControlServer::Limits limits;
  limits.read_timeout = 200ms;
  start(limits);
  RawClient client(path_);
  ASSERT_TRUE(client.connected());
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_FALSE(client.line().has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 4s);
}

TEST_F(ControlServerTest, ConnectionsBeyondTheLimitAreToldAndClosed) {
  ControlServer::Limits limits;
  limits.max_connections = 2;
  start(limits);
  RawClient a(path_);
  RawClient b(path_);
  ASSERT_TRUE(a.connected() && b.connected());
  // Both are being served (answered), so the third is surely beyond the limit.
  ASSERT_TRUE(a.send("{\"version\": 1, \"command\": \"reload\"}\n"));
  ASSERT_TRUE(b.send("{\"version\": 1, \"command\": \"reload\"}\n"));
  EXPECT_EQ(a.reply().at("ok"), true);
  EXPECT_EQ(b.reply().at("ok"), true);
  RawClient c(path_);
  ASSERT_TRUE(c.connected());
  const auto reply = c.reply();
  ASSERT_FALSE(reply.empty());
  EXPECT_EQ(reply.at("ok"), false);
  EXPECT_NE(std::string(reply.at("error").as_string()).find("too many control connections"), std::string::npos);
}

TEST_F(ControlServerTest, ALiveSocketIsNotTakenOver) {
  start();
  asio::io_context other;
  EXPECT_THROW(ControlServer(other, path_, handler_), ControlSocketInUse);
  // And it still answers.
  EXPECT_EQ(call(R"({"version": 1, "command": "status"})").at("ok"), true);
}

TEST_F(ControlServerTest, AStaleSocketFileIsReplaced) {
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);  // the file stays, nothing listens: a crashed pgnap's
  }
  start();
  EXPECT_EQ(call(R"({"version": 1, "command": "status"})").at("ok"), true);
}

TEST_F(ControlServerTest, AMissingDirectoryIsAnErrorNamingThePath) {
  const std::string missing = dir_ + "/no/such/dir/control.sock";
  try {
    ControlServer server(io_, missing, handler_);
    FAIL() << "expected an error";
  } catch (const ControlSocketInUse&) {
    FAIL() << "not in use: missing";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}

TEST_F(ControlServerTest, StopRemovesTheSocketFile) {
  start();
  std::promise<void> stopped;
  asio::post(io_, [&] {
    server_->stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  EXPECT_FALSE(std::filesystem::exists(path_));
  EXPECT_EQ(control_call(path_, "{}", 1s, 1s).status, ControlCallResult::Status::kMissing);
}

TEST(ControlCall, NoSocketFileMeansMissing) {
  const auto r = control_call("/nonexistent-dir/control.sock", "{}", 1s, 1s);
  EXPECT_EQ(r.status, ControlCallResult::Status::kMissing);
}

// The socket's mode is the access control: a user who is neither its owner nor in its group
// cannot connect. Needs root to become another user (the tests run as root in CI).
TEST_F(ControlServerTest, APeerWithoutAccessIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  start();
  // Make the directory passable for the other user; the socket itself stays 0660 root:root.
  ::chmod(dir_.c_str(), 0755);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Only async-signal-safe calls in the child of a threaded process.
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(100);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    ::_exit(rc == 0 ? 0 : (errno == EACCES ? 13 : 101));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 13) << "the connect as nobody should fail with EACCES";
  EXPECT_FALSE(handler_.last_peer.has_value());
}

}  // namespace
}  // namespace pgnap::daemon
