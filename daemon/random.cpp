#include "daemon/random.h"

#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

#include "auth/base64.h"

namespace pgnap::daemon {

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("the random number generator failed");
  }
  return out;
}

std::uint32_t random_u32() {
  const std::string bytes = random_bytes(4);
  std::uint32_t v = 0;
  std::memcpy(&v, bytes.data(), 4);
  return v;
}

std::string random_nonce(std::size_t n) { return auth::base64_encode(random_bytes(n)); }

}  // namespace pgnap::daemon
