// Where the daemon's feeds come from: a drop directory or an HTTP(S) index,
// one file per kind (source_dir.cpp, source_http.cpp). A feed's kind is in
// its name, and names sort in the order feeds must be applied:
//
//   NAME.snapshot.json   full snapshot: a manifest naming its data files
//   NAME.delta.ndjson    delta batch, applied in place
//   NAME.orders.ndjson   orders: RFM and lifecycle attributes, in place
//
// NAME.sig next to a feed is its detached signature (sync/signature.h).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sync/config.h"
#include "sync/error.h"
#include "sync/import.h"
#include "sync/signature.h"

namespace segsync {

enum class FeedKind { snapshot, delta, orders };

std::optional<FeedKind> feed_kind(std::string_view name);
std::string_view to_string(FeedKind kind);

// A relative path that stays below its base: not empty, not absolute, no
// "." or ".." segment, no backslash, control character, '?' or '#'.
bool is_safe_relative(std::string_view path);

// A feed with everything it names present locally, signatures and
// checksums checked.
struct FetchedFeed {
    std::string name;
    FeedKind kind = FeedKind::delta;
    std::string path;                          // the feed file (manifest for snapshots)
    std::map<std::string, std::string> files;  // snapshot: manifest key -> local path
    std::vector<std::string> involved;         // every name fetched, relative to the source
};

class Source {
public:
    explicit Source(std::string name) : name_(std::move(name)) {}
    virtual ~Source() = default;
    Source(const Source&) = delete;
    Source& operator=(const Source&) = delete;

    const std::string& name() const noexcept { return name_; }
    // Human-readable location for logs and status.
    virtual std::string location() const = 0;
    // Names offered now, any order, feeds or not. Throws ImportError (not
    // about any input) when the source cannot be read now.
    virtual std::vector<std::string> list() = 0;
    // A local copy of `relative`: a feed, its .sig, or a file a manifest
    // names. Throws FeedError when it does not exist, ImportError when it
    // cannot be fetched now.
    virtual std::string local_copy(const std::string& relative) = 0;
    // The feed is done with: applied (`rejection` empty) or rejected.
    virtual void settle(const std::string& name, const std::vector<std::string>& involved,
                        const std::string& rejection) = 0;
    // Readable when new feeds may have arrived (inotify), or -1; drain()
    // consumes what woke us.
    virtual int wake_fd() const { return -1; }
    virtual void drain() {}

private:
    std::string name_;
};

std::unique_ptr<Source> make_directory_source(const SourceConfig& config);
// Downloads go to `spool` (created as needed); `cancelled` aborts transfers.
std::unique_ptr<Source> make_http_source(const SourceConfig& config, const std::string& spool,
                                         CancelCheck cancelled);

// Fetches the feed `name` and, for a snapshot, every file its manifest
// names; with a verifier, checks the feed's signature (and that the
// manifest pins every file by SHA-256). Nothing is applied before this
// returns. Throws FeedError for a missing, unsigned, badly signed or
// malformed feed. `feed.involved` lists what was fetched so far, also when
// it throws, so the caller can settle all of it.
void fetch_feed(Source& source, const std::string& name, const SignatureVerifier* verifier,
                FetchedFeed& feed);

// Points the import's file options at a fetched snapshot's files.
void set_snapshot_files(const FetchedFeed& feed, ImportOptions& options);

}  // namespace segsync
