// PostgreSQL's md5 password method: pg_md5_encrypt() in src/common/md5_common.c builds the
// stored hash, and CheckMD5Auth()/md5_crypt_verify() in src/backend/libpq/crypt.c check the
// client's answer to the salt.
//
// MD5 comes from OpenSSL's default provider. Where it is missing (a FIPS-only OpenSSL),
// md5_hex() returns "" and everything built on it fails closed: no hash is produced and no
// answer verifies.
#include "auth/md5.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace pgnap::auth {

namespace {

constexpr std::string_view kMd5Prefix = "md5";
constexpr std::size_t kMd5HexLength = 32;

}  // namespace

std::string md5_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  static const char kEmpty[1] = {0};
  if (EVP_Digest(bytes.empty() ? kEmpty : bytes.data(), bytes.size(), digest, &length, EVP_md5(), nullptr) != 1 ||
      length != kMd5HexLength / 2) {
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(kMd5HexLength);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

std::string md5_password_hash(std::string_view password, std::string_view user) {
  // The user name is the salt: the same password gives different hashes for different users.
  const std::string hex = md5_hex(std::string(password) + std::string(user));
  if (hex.empty()) return "";
  return std::string(kMd5Prefix) + hex;
}

bool is_md5_hash(std::string_view text) {
  // get_password_type() in crypt.c: "md5" and 32 characters of MD5_PASSWD_CHARSET
  // ("0123456789abcdef"); anything else is not an md5 hash (upper case included).
  if (text.size() != kMd5Prefix.size() + kMd5HexLength || !text.starts_with(kMd5Prefix)) return false;
  for (const char c : text.substr(kMd5Prefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string md5_response(std::string_view stored_hash, const Md5Salt& salt) {
  if (!is_md5_hash(stored_hash)) return "";
  // pg_md5_encrypt(hash without "md5", salt, 4): the salt's 4 raw bytes after the 32 hex digits.
  std::string input(stored_hash.substr(kMd5Prefix.size()));
  input.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  const std::string hex = md5_hex(input);
  if (hex.empty()) return "";
  return std::string(kMd5Prefix) + hex;
}

bool md5_verify(std::string_view stored_hash, const Md5Salt& salt, std::string_view response) {
  const std::string expected = md5_response(stored_hash, salt);
  // The expected length is public (35); only the contents are compared in constant time.
  return !expected.empty() && response.size() == expected.size() &&
         CRYPTO_memcmp(expected.data(), response.data(), expected.size()) == 0;
}

}  // namespace pgnap::auth
