#include "daemon/client_queue.h"

#include "protocol/messages.h"

namespace pgnap::daemon {

namespace {

namespace fmsg = protocol::frontend_msg;

enum class Role { kSimple, kExtended, kSync, kNoAnswer };

Role role_of(char type) {
  switch (type) {
    case fmsg::kQuery:
    case fmsg::kFunctionCall: return Role::kSimple;
    case fmsg::kParse:
    case fmsg::kBind:
    case fmsg::kDescribe:
    case fmsg::kExecute:
    case fmsg::kClose: return Role::kExtended;
    case fmsg::kSync: return Role::kSync;
    default: return Role::kNoAnswer;  // Flush; CopyData, CopyDone, CopyFail outside COPY
  }
}

}  // namespace

std::string ClientQueue::push(char type, std::string_view message) {
  if (skipping_) {
    if (role_of(type) != Role::kSync) return {};
    skipping_ = false;
    return protocol::encode_ready_for_query('I');
  }
  messages_.push_back({type, std::string(message)});
  bytes_ += message.size();
  if (gateway_bytes_) *gateway_bytes_ += message.size();
  if (instance_bytes_) *instance_bytes_ += message.size();
  return {};
}

bool ClientQueue::has_command() const {
  for (const auto& m : messages_) {
    const Role role = role_of(m.type);
    if (role == Role::kSimple || role == Role::kExtended) return true;
  }
  return false;
}

std::string ClientQueue::take_all() {
  std::string all;
  all.reserve(bytes_);
  for (const auto& m : messages_) all += m.bytes;
  clear();
  return all;
}

std::string ClientQueue::answer_first(const protocol::ErrorResponse& error) { return answer(error, true); }

std::string ClientQueue::answer_all(const protocol::ErrorResponse& error) { return answer(error, false); }

std::string ClientQueue::answer(const protocol::ErrorResponse& error, bool first_unit_only) {
  const std::string error_message = protocol::encode_error_response(error);
  std::string out;
  bool in_batch = false;  // inside an extended batch that has been answered with the error
  bool answered_command = false;
  while (!messages_.empty()) {
    const Role role = role_of(messages_.front().type);
    if (first_unit_only && answered_command && !in_batch) break;  // the first unit is done
    pop_front();
    switch (role) {
      case Role::kSimple:
        if (in_batch) break;  // a Query inside an unfinished batch is skipped with it
        out += error_message + protocol::encode_ready_for_query('I');
        answered_command = true;
        break;
      case Role::kExtended:
        if (!in_batch) out += error_message;
        in_batch = true;
        answered_command = true;
        break;
      case Role::kSync:
        // PostgreSQL answers every Sync with ReadyForQuery, after an error or not.
        out += protocol::encode_ready_for_query('I');
        in_batch = false;
        break;
      case Role::kNoAnswer: break;
    }
  }
  // A batch whose Sync has not come yet: drop what follows until it comes.
  if (in_batch) skipping_ = true;
  return out;
}

void ClientQueue::pop_front() {
  const std::size_t n = messages_.front().bytes.size();
  bytes_ -= n;
  if (gateway_bytes_) *gateway_bytes_ -= n;
  if (instance_bytes_) *instance_bytes_ -= n;
  messages_.pop_front();
}

void ClientQueue::clear() {
  while (!messages_.empty()) pop_front();
}

}  // namespace pgnap::daemon
