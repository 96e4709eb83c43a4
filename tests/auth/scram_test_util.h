// Helpers shared by the SCRAM tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "auth/scram.h"

namespace pgnap::auth::testing {

// The failure in a result, or a test failure (and an empty ScramFailure) when it succeeded.
template <class T>
ScramFailure failure_of(const std::variant<T, ScramFailure>& result) {
  if (const auto* f = std::get_if<ScramFailure>(&result)) return *f;
  ADD_FAILURE() << "expected a ScramFailure, got a success";
  return {};
}

// The value in a result, or a test failure naming the ScramFailure (and a default T).
template <class T>
T value_of(const std::variant<T, ScramFailure>& result) {
  if (const auto* v = std::get_if<T>(&result)) return *v;
  const auto& f = std::get<ScramFailure>(result);
  ADD_FAILURE() << "unexpected ScramFailure " << f.sqlstate << " " << f.message << " / " << f.detail;
  return T{};
}

inline std::string key_string(const ScramKey& key) { return std::string(key.begin(), key.end()); }

}  // namespace pgnap::auth::testing
