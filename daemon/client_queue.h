// What a client of the authenticating mode sends while no server is attached: its messages,
// kept in order until the instance is awake and a server connection logged in, then sent
// first. Bounded by the session's queue_limit (the caller checks bytes()).
//
// When pgnap must answer instead of the server — a cancel of the query at the head, or a
// wake that failed — it answers as PostgreSQL would (postgres.c): each simple Query or
// FunctionCall gets the ErrorResponse and a ReadyForQuery; an extended-protocol batch gets
// the ErrorResponse at its first command and, once its Sync has come, one ReadyForQuery;
// Flush, CopyData, CopyDone and CopyFail outside COPY need no answer. No transaction can be
// open without a server, so every ReadyForQuery says 'I'.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "protocol/encode.h"

namespace pgnap::daemon {

class ClientQueue {
 public:
  // Where the bytes are counted besides the queue: every queue of the gateway together, and
  // the instance's gauge (either may be null).
  ClientQueue(std::uint64_t* gateway_bytes, std::uint64_t* instance_bytes)
      : gateway_bytes_(gateway_bytes), instance_bytes_(instance_bytes) {}
  ~ClientQueue() { clear(); }
  ClientQueue(const ClientQueue&) = delete;
  ClientQueue& operator=(const ClientQueue&) = delete;

  // Queues one complete message (type byte included). Returns what to send the client now:
  // while the rest of a cancelled or failed batch is skipped, the messages are dropped and
  // its Sync is answered with ReadyForQuery.
  [[nodiscard]] std::string push(char type, std::string_view message);

  [[nodiscard]] bool empty() const { return messages_.empty(); }
  [[nodiscard]] std::size_t size() const { return messages_.size(); }
  [[nodiscard]] std::uint64_t bytes() const { return bytes_; }
  // Whether the head of the queue holds a command a cancel would end (not only a Flush or a
  // stray CopyData, and not only a Sync).
  [[nodiscard]] bool has_command() const;

  // Everything queued, in order, for the server; the queue is left empty.
  [[nodiscard]] std::string take_all();
  // The answers to the first unit that holds a command, which is removed (a cancel).
  [[nodiscard]] std::string answer_first(const protocol::ErrorResponse& error);
  // The answers to every queued message, which are all removed (a failed wake).
  [[nodiscard]] std::string answer_all(const protocol::ErrorResponse& error);

 private:
  struct Message {
    char type;
    std::string bytes;
  };
  // Answers the messages from the front up to the end of the first unit (or all of them),
  // removing them.
  std::string answer(const protocol::ErrorResponse& error, bool first_unit_only);
  void pop_front();
  void clear();

  std::deque<Message> messages_;
  std::uint64_t bytes_ = 0;
  bool skipping_ = false;  // the rest of an extended batch up to its Sync is dropped
  std::uint64_t* gateway_bytes_;
  std::uint64_t* instance_bytes_;
};

}  // namespace pgnap::daemon
