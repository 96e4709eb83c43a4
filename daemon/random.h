// Unpredictable bytes, for what a client must not guess: SCRAM nonces, md5 salts, the
// BackendKeyData pgnap issues. OpenSSL's CSPRNG (RAND_bytes), seeded by the kernel.
#pragma once

#include <cstdint>
#include <string>

namespace pgnap::daemon {

// Throws std::runtime_error if the generator fails (it does not, once seeded).
[[nodiscard]] std::string random_bytes(std::size_t n);
[[nodiscard]] std::uint32_t random_u32();
// `n` random bytes in base64: a SCRAM nonce (printable, without ',').
[[nodiscard]] std::string random_nonce(std::size_t n = 18);

}  // namespace pgnap::daemon
