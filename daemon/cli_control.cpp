// The control commands of the command line (`pgnap status`, `wake`, `sleep`, `reload`): one
// request over the control socket (daemon/control.h, docs/control.md), its answer printed.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "daemon/cli.h"
#include "daemon/control.h"

namespace pgnap::daemon {

namespace {

namespace json = boost::json;

std::string text_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::int64_t number_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  return 0;
}

std::string elapsed_ms(std::int64_t ms) { return config::format_elapsed(std::chrono::milliseconds(ms)); }

// Rows under a header, each column as wide as its widest cell.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows, std::string_view indent) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line(indent);
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

void print_sessions(std::ostream& out, const json::array& sessions, std::string_view indent) {
  std::vector<std::vector<std::string>> rows{
      {"ID", "USER", "DATABASE", "APPLICATION", "CLIENT", "STATE", "IDLE FOR", "AWAKE?", "WHY"}};
  for (const auto& v : sessions) {
    if (!v.is_object()) continue;
    const auto& s = v.as_object();
    const auto* keeps = s.if_contains("keeps_awake");
    rows.push_back({std::to_string(number_of(s, "id")), text_of(s, "user"), text_of(s, "database"),
                    text_of(s, "application_name"), text_of(s, "client_address"), text_of(s, "state"),
                    elapsed_ms(number_of(s, "idle_for_ms")),
                    keeps != nullptr && keeps->is_bool() && keeps->as_bool() ? "yes" : "no", text_of(s, "why")});
  }
  print_table(out, rows, indent);
}

// "alice to app (psql) from 127.0.0.1:5000" for a client in the status response.
std::string describe_client(const json::object& client) {
  std::string text = text_of(client, "user");
  if (const auto db = text_of(client, "database"); !db.empty()) text += " to " + db;
  if (const auto app = text_of(client, "application_name"); !app.empty()) text += " (" + app + ")";
  if (const auto address = text_of(client, "address"); !address.empty()) text += " from " + address;
  return text;
}

void print_status_table(std::ostream& out, const json::object& reply) {
  const auto* instances = reply.if_contains("instances");
  if (instances == nullptr || !instances->is_array() || instances->as_array().empty()) {
    out << "no instances\n";
    return;
  }
  bool first = true;
  for (const auto& v : instances->as_array()) {
    if (!v.is_object()) continue;
    const auto& i = v.as_object();
    if (!first) out << "\n";
    first = false;
    out << "instance " << text_of(i, "name") << ": " << text_of(i, "state");
    if (const auto since = text_of(i, "since"); !since.empty()) {
      out << " since " << since << " (" << elapsed_ms(number_of(i, "for_ms")) << ")";
    }
    out << ", mode " << text_of(i, "mode") << "\n";
    const auto* wake = i.if_contains("last_wake");
    out << "  last wake:  ";
    if (wake != nullptr && wake->is_object()) {
      const auto& w = wake->as_object();
      const std::string cause = text_of(w, "cause");
      out << text_of(w, "at") << " (" << elapsed_ms(number_of(w, "ago_ms")) << " ago), " << cause;
      const auto* client = w.if_contains("client");
      if (cause == "client" && client != nullptr && client->is_object()) {
        out << ": " << describe_client(client->as_object());
      } else if (const auto detail = text_of(w, "detail"); !detail.empty()) {
        out << ": " << detail;
      }
      out << ", " << text_of(w, "outcome") << "\n";
    } else {
      out << "none since pgnap started\n";
    }
    const auto* next = i.if_contains("next");
    if (next != nullptr && next->is_array() && !next->as_array().empty()) {
      for (const auto& p : next->as_array()) {
        if (!p.is_object()) continue;
        const auto& n = p.as_object();
        const std::string what = text_of(n, "what");
        // "suspend at T", but "stay awake until T".
        out << "  next:       " << what << (what.ends_with(" until") ? " " : " at ") << text_of(n, "at") << " (in "
            << elapsed_ms(number_of(n, "in_ms")) << ")";
        if (const auto detail = text_of(n, "detail"); !detail.empty()) out << ", " << detail;
        out << "\n";
      }
    } else {
      out << "  next:       nothing planned\n";
    }
    out << "  waiting:    " << number_of(i, "waiting") << " client(s)\n";
    const auto* sessions = i.if_contains("sessions");
    if (sessions == nullptr || !sessions->is_array() || sessions->as_array().empty()) {
      out << "  sessions:   none\n";
      continue;
    }
    out << "  sessions:   " << sessions->as_array().size() << "\n";
    print_sessions(out, sessions->as_array(), "    ");
  }
}

}  // namespace

int run_control_command(const ControlCommand& command) {
  const std::string& path = command.socket;
  const config::Duration wake_timeout = command.wake_timeout;
  json::object request{{"version", kControlProtocolVersion}, {"command", command.command}};
  if (!command.name.empty()) request["instance"] = command.name;
  if (!command.hold.empty()) request["for"] = command.hold;
  // The daemon answers a wake once the instance is awake or its wake failed; a reload reads
  // and applies the file.
  std::chrono::milliseconds reply_timeout = std::chrono::seconds(30);
  if (command.command == "wake") reply_timeout = wake_timeout + std::chrono::seconds(10);
  const auto result = control_call(path, json::serialize(request), std::chrono::seconds(5), reply_timeout);
  using Status = ControlCallResult::Status;
  switch (result.status) {
    case Status::kOk: break;
    case Status::kMissing:
      std::cerr << "pgnap: cannot connect to " << path << " (" << result.error
                << "): is pgnap running? control_socket = " << path << "\n";
      return kExitFailed;
    case Status::kDenied:
      std::cerr << "pgnap: permission denied: " << path << "; run as the pgnap user or a member of its group\n";
      return kExitFailed;
    case Status::kTimeout:
    case Status::kError: break;
  }
  if (result.status != Status::kOk) {
    std::cerr << "pgnap: " << path << ": " << result.error << "\n";
    return kExitFailed;
  }
  boost::system::error_code ec;
  const json::value parsed = json::parse(result.reply, ec);
  if (ec || !parsed.is_object()) {
    std::cerr << "pgnap: " << path << ": the daemon's response is not a JSON object: " << result.reply << "\n";
    return kExitFailed;
  }
  const json::object& reply = parsed.as_object();
  const auto* ok = reply.if_contains("ok");
  if (ok == nullptr || !ok->is_bool() || !ok->as_bool()) {
    std::cerr << "pgnap: " << command.command << (command.name.empty() ? "" : " " + command.name) << ": "
              << text_of(reply, "error") << "\n";
    if (const auto* blocking = reply.if_contains("blocking"); blocking != nullptr && blocking->is_array()) {
      std::cerr << "sessions in use:\n";
      print_sessions(std::cerr, blocking->as_array(), "  ");
    }
    return kExitFailed;
  }
  if (command.command == "status") {
    if (command.format == "json") std::cout << result.reply << "\n";
    else print_status_table(std::cout, reply);
  } else {
    std::cout << text_of(reply, "message") << "\n";
  }
  std::cout.flush();
  return std::cout ? kExitOk : kExitFailed;
}

}  // namespace pgnap::daemon
