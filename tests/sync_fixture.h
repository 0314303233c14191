// Temporary directories and files for segsync tests, and the built segsync
// binary for command-line tests.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace fixture {

class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/segsync-test-XXXXXX";
        if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline std::string write_file(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    return path;
}

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// build/segsync sits next to the test binary in the CMake build tree.
inline std::string segsync_binary() {
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    auto binary = self.parent_path() / "segsync";
    return !ec && std::filesystem::exists(binary) ? binary.string() : std::string();
}

inline int run_cli(const std::string& args, const std::string& out, const std::string& err) {
    int status = std::system((segsync_binary() + " " + args + " >" + out + " 2>" + err).c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace fixture

#include <sstream>

#include "sync/import.h"
#include "sync/inspect.h"

namespace fixture {

// A database root with one published snapshot: segments vip (priority 10)
// and news (5).
inline std::string import_db(const TempDir& tmp, const std::string& profiles,
                             std::size_t min_map_size = 0) {
    segsync::ImportOptions o;
    o.db = tmp.path() + "/db";
    o.segments_path = write_file(tmp.path() + "/in/segments.ndjson",
                                 "{\"name\":\"vip\",\"priority\":10}\n{\"name\":\"news\",\"priority\":5}\n");
    o.profiles_path = write_file(tmp.path() + "/in/profiles.ndjson", profiles);
    o.min_map_size = min_map_size;
    segsync::run_import(o);
    return o.db;
}

// One database of the live snapshot, as `segsync dump` prints it.
inline std::string dump(const std::string& db, const std::string& what) {
    std::ostringstream out;
    segsync::dump_db(db, what, std::nullopt, out);
    return out.str();
}

}  // namespace fixture
