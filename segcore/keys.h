// HMAC-SHA256 keys for signed visitor ids, read from a key file:
//
//   # comment lines and blank lines are ignored
//   <key-id> base64:<secret>      (standard or url alphabet, padding optional)
//   <key-id> hex:<secret>
//
// The first key signs; every key verifies, so a new key is put first and the
// old one stays below it until the cookies it signed have expired.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

typedef struct evp_mac_ctx_st EVP_MAC_CTX;

namespace segcore {

inline constexpr std::size_t kMacSize = 32;  // SHA-256
inline constexpr std::size_t kMinSecretBytes = 32;
inline constexpr std::size_t kMaxSecretBytes = 256;
inline constexpr std::size_t kMaxKeyIdLength = 16;

// Key ids travel in cookies between dots: 1..16 of [A-Za-z0-9_-].
bool is_key_id(std::string_view id);

// "FILE: message" or "FILE:LINE: message"; never quotes a secret.
class KeyFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Key {
public:
    // Throws std::runtime_error when OpenSSL cannot set up HMAC-SHA256.
    Key(std::string id, std::string_view secret);
    ~Key();
    Key(Key&&) noexcept;
    Key& operator=(Key&&) noexcept;

    const std::string& id() const noexcept { return id_; }

    // HMAC-SHA256 of the concatenated parts. The keyed context is reused
    // (re-initialised, not re-keyed) for each MAC, so a Key must not be used
    // by two threads at once. Throws std::runtime_error if OpenSSL fails.
    void mac(std::initializer_list<std::string_view> parts, unsigned char* out) const;

private:
    struct CtxFree {
        void operator()(EVP_MAC_CTX* ctx) const;
    };
    std::string id_;
    std::unique_ptr<EVP_MAC_CTX, CtxFree> ctx_;
};

class KeyRing {
public:
    // Reads and parses a key file. Throws KeyFileError when it cannot be
    // read or holds no keys, a malformed line, a duplicate key id, or a
    // secret shorter than kMinSecretBytes (or longer than kMaxSecretBytes).
    static KeyRing load(const std::string& path);
    // `name` is what messages call the text (the file's path).
    static KeyRing parse(std::string_view text, const std::string& name);

    const Key& signing_key() const noexcept { return keys_.front(); }
    const Key* find(std::string_view id) const noexcept;
    std::size_t size() const noexcept { return keys_.size(); }

private:
    std::vector<Key> keys_;  // never empty
};

}  // namespace segcore
