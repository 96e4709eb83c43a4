// A client turned away, from wherever that is decided (an instance's admission, the router,
// connecting to the server) to the ErrorResponse the client reads. The kind is what pgnap
// decides on (which limit to count, whether to retry); the error is only ever sent.
#pragma once

#include <string>
#include <utility>

#include "protocol/encode.h"

namespace pgnap::daemon {

struct Refusal {
  enum class Kind {
    kShuttingDown,       // 57P01: the gateway is stopping
    kTooManyWaiting,     // 53300: max_waiting clients already wait for the wake
    kBackingOff,         // 57P03: the last wake failed and the retry delay has not passed
    kWakeFailed,         // 57P03: the start command or the server failed
    kWakeTimedOut,       // 57P03: not ready within wake_timeout
    kConnectFailed,      // 57P03: ready, but connecting (or TLS to it) failed
    kPoolFull,           // 53300: every pooled server connection stayed in use for pool_wait_timeout
    kNotWokenForClient,  // 57P03: asleep, and a wake rule says this client never wakes it
  };
  Kind kind = Kind::kWakeFailed;
  protocol::ErrorResponse error;  // severity FATAL

  static Refusal make(Kind kind, std::string_view sqlstate, std::string message, std::string detail = {},
                      std::string hint = {}) {
    return Refusal{kind, protocol::ErrorResponse{"FATAL", std::string(sqlstate), std::move(message), std::move(detail),
                                                 std::move(hint)}};
  }
};

}  // namespace pgnap::daemon
