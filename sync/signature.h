// Detached feed signatures (HMAC-SHA256 or Ed25519, via OpenSSL), checked
// before anything of a feed is applied. A signature covers
//
//     "segedge-feed-v1\n" NAME "\n" SHA256-HEX-OF-CONTENT "\n"
//
// so it binds the feed's name to its bytes: a signed file cannot be
// replayed under another (newer) name, and verifying a large file only
// streams it through SHA-256.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace segsync {

// Lowercase hex SHA-256 of a file's content, streamed. Throws ImportError
// (not about the input) when the file cannot be read.
std::string sha256_file(const std::string& path);

std::string signed_message(std::string_view name, std::string_view sha256_hex);

struct SignatureKeys {
    // Files holding a shared secret as hex, at least 32 bytes (64 digits).
    std::vector<std::string> hmac_sha256;
    // PEM public keys (openssl pkey -pubout).
    std::vector<std::string> ed25519;

    bool empty() const noexcept { return hmac_sha256.empty() && ed25519.empty(); }
};

class SignatureVerifier {
public:
    // Loads every key; throws ImportError naming a missing or bad key file.
    explicit SignatureVerifier(const SignatureKeys& keys);
    ~SignatureVerifier();
    SignatureVerifier(const SignatureVerifier&) = delete;
    SignatureVerifier& operator=(const SignatureVerifier&) = delete;

    // Throws FeedError unless `signature_path` (raw bytes or hex) holds a
    // signature by one of the keys over `name` and the content of `path`.
    void verify(const std::string& name, const std::string& path,
                const std::string& signature_path) const;

private:
    struct Keys;
    std::unique_ptr<Keys> keys_;
};

// `segsync sign`: the hex signature of `path` under `name`, made with an
// HMAC key file (hex) or an Ed25519 private key (PEM).
std::string sign_feed(const std::string& key_path, const std::string& name,
                      const std::string& path);

}  // namespace segsync
