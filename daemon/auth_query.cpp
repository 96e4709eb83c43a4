#include "daemon/auth_query.h"

#include <array>

#include "daemon/message_reader.h"
#include "protocol/messages.h"

namespace pgnap::daemon {

asio::awaitable<AuthQueryResult> run_auth_query(Stream& server, std::string_view query, std::string_view user,
                                                Clock::time_point deadline) {
  namespace msg = protocol::backend_msg;
  const std::array<std::optional<std::string>, 1> parameters{std::string(user)};
  const std::string request = protocol::encode_parse("", query) + protocol::encode_bind("", "", parameters) +
                              protocol::encode_execute("") + protocol::encode_sync();
  AuthQueryResult result;
  if (const auto ec = co_await write_all(server, request, deadline); ec) {
    result.error = "sending the auth_query failed: " + ec.message();
    co_return result;
  }
  MessageReader reader(server, 1 << 20);
  bool have_row = false;
  std::string error;
  for (;;) {
    const auto read = co_await reader.next(deadline);
    if (read.status != MessageReader::Status::kMessage) {
      result.error = read.status == MessageReader::Status::kTimedOut ? "the auth_query did not finish in time"
                                                                     : "the connection failed during the auth_query";
      co_return result;
    }
    switch (read.frame.type) {
      case msg::kDataRow:
        if (!have_row) {
          have_row = true;
          const auto columns = protocol::parse_data_row(read.frame.body);
          // (usename, passwd) as PgBouncer's query returns them; a query returning only the
          // secret is accepted too.
          if (columns && !columns->empty()) result.secret = columns->size() >= 2 ? (*columns)[1] : (*columns)[0];
        }
        break;
      case msg::kErrorResponse: {
        const auto fields = protocol::parse_error_response(read.frame.body);
        error = fields ? fields->sqlstate + " " + fields->message : "an ErrorResponse";
        break;
      }
      case msg::kReadyForQuery:
        if (!error.empty()) {
          result.secret.reset();
          result.error = "the auth_query failed: " + error;
          co_return result;
        }
        result.ran = true;
        co_return result;
      default:  // ParseComplete, BindComplete, CommandComplete, notices, parameter changes
        break;
    }
  }
}

}  // namespace pgnap::daemon
