// A drop directory: producers write elsewhere (or under a dot-name) and
// rename(2) finished files in, so a feed never appears half-written; a
// snapshot's data files go in first, its manifest last. Settled feeds are
// moved to done/ or failed/ (with NAME.error saying why), so the directory
// only ever holds what is still to do.
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>

#include "sync/source.h"

namespace segsync {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDone = "done";
constexpr const char* kFailed = "failed";

class DirectorySource : public Source {
public:
    explicit DirectorySource(const SourceConfig& config) : Source(config.name), dir_(config.path) {
        while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
        struct stat st;
        if (stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            throw ImportError("source " + quote(name()) + ": " + dir_ + " is not a directory");
        inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        // Without inotify the source is still polled; it is only slower to react.
        if (inotify_ >= 0 && inotify_add_watch(inotify_, dir_.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
            close(inotify_);
            inotify_ = -1;
        }
    }
    ~DirectorySource() override {
        if (inotify_ >= 0) close(inotify_);
    }

    std::string location() const override { return dir_; }

    std::vector<std::string> list() override {
        std::vector<std::string> names;
        std::error_code ec;
        for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
            std::string name = it->path().filename().string();
            if (name[0] != '.' && it->is_regular_file()) names.push_back(std::move(name));
        }
        if (ec) throw ImportError("cannot list " + dir_ + ": " + ec.message());
        return names;
    }

    std::string local_copy(const std::string& relative) override {
        std::string path = dir_ + "/" + relative;
        struct stat st;
        if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
            throw FeedError("missing " + path);
        return path;
    }

    void settle(const std::string& name, const std::vector<std::string>& involved,
                const std::string& rejection) override {
        std::string to = dir_ + "/" + (rejection.empty() ? kDone : kFailed);
        std::vector<std::string> files = involved;
        if (std::find(files.begin(), files.end(), name) == files.end()) files.push_back(name);
        if (std::find(files.begin(), files.end(), name + ".sig") == files.end())
            files.push_back(name + ".sig");  // also when unchecked: it belongs to the feed
        for (const auto& relative : files) move_aside(relative, to);
        if (!rejection.empty()) std::ofstream(to + "/" + name + ".error") << rejection << '\n';
    }

    int wake_fd() const override { return inotify_; }

    void drain() override {
        char buffer[4096];
        while (inotify_ >= 0 && read(inotify_, buffer, sizeof buffer) > 0) {
        }
    }

private:
    void move_aside(const std::string& relative, const std::string& to) {
        std::string from = dir_ + "/" + relative;
        std::string target = to + "/" + relative;
        std::error_code ec;
        fs::create_directories(fs::path(target).parent_path(), ec);
        if (ec) throw ImportError("cannot create " + fs::path(target).parent_path().string() + ": " + ec.message());
        if (rename(from.c_str(), target.c_str()) != 0 && errno != ENOENT)
            throw system_error("rename " + from + " to " + target);
        // A snapshot's data directory goes once empty; rmdir keeps it otherwise.
        std::size_t slash = relative.rfind('/');
        if (slash != std::string::npos) rmdir((dir_ + "/" + relative.substr(0, slash)).c_str());
    }

    std::string dir_;
    int inotify_ = -1;
};

}  // namespace

std::unique_ptr<Source> make_directory_source(const SourceConfig& config) {
    return std::make_unique<DirectorySource>(config);
}

}  // namespace segsync
