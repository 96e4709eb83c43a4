#include "daemon/build_info.h"

// PGNAP_REVISION, regenerated at every build; only this file includes it.
#include "pgnap_revision.h"

namespace pgnap::daemon {

std::string_view version() { return PGNAP_VERSION; }
std::string_view revision() { return PGNAP_REVISION; }
std::string_view default_config_file() { return PGNAP_CONFIG_FILE; }

}  // namespace pgnap::daemon
