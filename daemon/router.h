// Routing: which instance serves a client's database. Names listed in an instance's
// `databases` go there; "*" marks the instance that takes every other name. The config
// loader has already refused a name claimed twice and a second "*".
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pgnap::daemon {

class Instance;

class Router {
 public:
  Router() = default;
  // `instances[i]` serves the databases of its config.
  explicit Router(const std::vector<Instance*>& instances);

  // nullptr when no instance serves `database`.
  [[nodiscard]] Instance* route(std::string_view database) const;
  // The names served explicitly, for the 3D000 hint.
  [[nodiscard]] std::vector<std::string> served_names() const;

 private:
  std::map<std::string, Instance*, std::less<>> by_name_;
  Instance* default_ = nullptr;
};

}  // namespace pgnap::daemon
