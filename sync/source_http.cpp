// An HTTP(S) source (any S3-compatible store or CDN): the config names an
// index, a text file listing feed names one per line (blank lines and
// #-comments ignored), relative to the index's URL. The index is fetched
// with a conditional GET (If-None-Match / If-Modified-Since), everything
// with gzip accepted, timeouts, and retries with exponential backoff.
// Upload a feed (and its .sig, and a snapshot's data files) before listing
// it in the index.
#include <curl/curl.h>
#include <strings.h>

#include <algorithm>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "sync/source.h"

namespace segsync {
namespace {

namespace fs = std::filesystem;

constexpr long kNotModified = 304;
constexpr unsigned kMaxBackoffMs = 60000;

struct Response {
    long status = 0;
    std::string etag;
    std::int64_t last_modified = -1;
};

class Transfer {
public:
    Transfer(const SourceConfig& config, const CancelCheck& cancelled) : cancelled_(cancelled) {
        curl_ = curl_easy_init();
        if (!curl_) throw ImportError("curl_easy_init failed");
        curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl_, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(curl_, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(curl_, CURLOPT_ACCEPT_ENCODING, "");  // every encoding libcurl decodes
        curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config.connect_timeout_ms));
        curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(config.timeout_ms));
        curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl_, CURLOPT_USERAGENT, "segsync/1");
        curl_easy_setopt(curl_, CURLOPT_FILETIME, 1L);
        if (!config.ca_file.empty()) curl_easy_setopt(curl_, CURLOPT_CAINFO, config.ca_file.c_str());
        curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, &Transfer::progress);
        curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, this);
        curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &Transfer::header);
        curl_easy_setopt(curl_, CURLOPT_HEADERDATA, this);
        curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, error_);
    }
    ~Transfer() {
        curl_slist_free_all(headers_);
        curl_easy_cleanup(curl_);
    }
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;

    // Conditions the request on what an earlier response said.
    void if_changed_since(const Response& earlier) {
        if (!earlier.etag.empty()) {
            std::string line = "If-None-Match: " + earlier.etag;
            headers_ = curl_slist_append(headers_, line.c_str());
            curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
        } else if (earlier.last_modified >= 0) {
            curl_easy_setopt(curl_, CURLOPT_TIMECONDITION, static_cast<long>(CURL_TIMECOND_IFMODSINCE));
            curl_easy_setopt(curl_, CURLOPT_TIMEVALUE_LARGE, static_cast<curl_off_t>(earlier.last_modified));
        }
    }

    // One GET into `sink` (fwrite-like). CURLcode, with the response filled.
    CURLcode get(const std::string& url, void* sink, curl_write_callback write, Response& response) {
        etag_.clear();
        error_[0] = '\0';
        curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, write);
        curl_easy_setopt(curl_, CURLOPT_WRITEDATA, sink);
        CURLcode rc = curl_easy_perform(curl_);
        curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &response.status);
        curl_off_t filetime = -1;
        curl_easy_getinfo(curl_, CURLINFO_FILETIME_T, &filetime);
        response.last_modified = filetime;
        response.etag = etag_;
        if (rc == CURLE_ABORTED_BY_CALLBACK) throw Cancelled();
        return rc;
    }

    std::string error_text(CURLcode rc) const {
        return error_[0] ? std::string(error_) : std::string(curl_easy_strerror(rc));
    }

private:
    static int progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
        const auto& cancelled = static_cast<Transfer*>(self)->cancelled_;
        return cancelled && cancelled() ? 1 : 0;
    }

    static std::size_t header(char* data, std::size_t size, std::size_t count, void* self) {
        std::string line(data, size * count);
        if (line.size() > 5 && strncasecmp(line.c_str(), "etag:", 5) == 0) {
            std::string value = line.substr(5);
            auto first = value.find_first_not_of(" \t");
            auto last = value.find_last_not_of(" \t\r\n");
            static_cast<Transfer*>(self)->etag_ =
                first == std::string::npos ? "" : value.substr(first, last - first + 1);
        }
        return size * count;
    }

    CURL* curl_ = nullptr;
    curl_slist* headers_ = nullptr;
    CancelCheck cancelled_;
    std::string etag_;
    char error_[CURL_ERROR_SIZE];
};

std::size_t append_to_string(char* data, std::size_t size, std::size_t count, void* out) {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
}

std::size_t append_to_file(char* data, std::size_t size, std::size_t count, void* out) {
    return std::fwrite(data, size, count, static_cast<FILE*>(out)) * size;
}

bool is_transient(CURLcode rc, long status) {
    if (rc != CURLE_OK) return true;  // connect, timeout, reset, TLS: try again
    return status == 408 || status == 429 || status >= 500;
}

class HttpSource : public Source {
public:
    HttpSource(const SourceConfig& config, std::string spool, CancelCheck cancelled)
        : Source(config.name), config_(config), spool_(std::move(spool)), cancelled_(std::move(cancelled)) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        base_ = config.index_url.substr(0, config.index_url.rfind('/') + 1);
        std::error_code ec;
        fs::create_directories(spool_, ec);
        if (ec) throw ImportError("cannot create " + spool_ + ": " + ec.message());
    }
    ~HttpSource() override { curl_global_cleanup(); }

    std::string location() const override { return config_.index_url; }

    std::vector<std::string> list() override {
        std::string body;
        Response response;
        fetch(config_.index_url, true, [&](Transfer& t) {
            body.clear();
            return t.get(config_.index_url, &body, append_to_string, response);
        }, response);
        if (response.status == kNotModified) return names_;
        index_ = response;
        names_.clear();
        std::istringstream lines(body);
        std::string line;
        while (std::getline(lines, line)) {
            while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
                line.pop_back();
            if (line.empty() || line[0] == '#') continue;
            if (is_safe_relative(line)) names_.push_back(line);
        }
        return names_;
    }

    std::string local_copy(const std::string& relative) override {
        std::string local = spool_ + "/" + relative;
        std::error_code ec;
        fs::create_directories(fs::path(local).parent_path(), ec);
        if (ec) throw ImportError("cannot create " + fs::path(local).parent_path().string() + ": " + ec.message());
        std::string url = base_ + relative;
        Response response;
        fetch(url, false, [&](Transfer& t) {
            FILE* out = std::fopen(local.c_str(), "wb");
            if (!out) throw system_error("cannot write " + local);
            CURLcode rc = CURLE_OK;
            try {
                rc = t.get(url, out, append_to_file, response);
            } catch (...) {
                std::fclose(out);
                throw;
            }
            if (std::fclose(out) != 0 && rc == CURLE_OK) throw system_error("cannot write " + local);
            return rc;
        }, response);
        return local;
    }

    void settle(const std::string&, const std::vector<std::string>& involved, const std::string&) override {
        for (const auto& relative : involved) std::remove((spool_ + "/" + relative).c_str());
    }

private:
    // Runs `attempt` with retries and exponential backoff. 404/410 mean the
    // object is not there (FeedError); other failures, once retries are
    // used up, are the network's (ImportError, tried again next poll).
    template <typename Attempt>
    void fetch(const std::string& url, bool conditional, Attempt attempt, Response& response) {
        unsigned delay = config_.retry_delay_ms;
        for (unsigned tries = 0;; ++tries) {
            Transfer transfer(config_, cancelled_);
            if (conditional) transfer.if_changed_since(index_);
            CURLcode rc = attempt(transfer);
            long status = response.status;
            if (rc == CURLE_OK && (status == 200 || (conditional && status == kNotModified))) return;
            if (rc == CURLE_OK && (status == 404 || status == 410))
                throw FeedError("GET " + url + ": HTTP " + std::to_string(status));
            std::string problem = rc != CURLE_OK ? transfer.error_text(rc) : "HTTP " + std::to_string(status);
            if (!is_transient(rc, status) || tries >= config_.retries)
                throw ImportError("GET " + url + ": " + problem + " (after " + std::to_string(tries + 1) +
                                  (tries ? " tries)" : " try)"));
            sleep_ms(delay);
            delay = std::min(kMaxBackoffMs, delay * 2 + 1);
        }
    }

    // Sleeps in slices so a stop request is not kept waiting.
    void sleep_ms(unsigned ms) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (std::chrono::steady_clock::now() < until) {
            if (cancelled_ && cancelled_()) throw Cancelled();
            std::this_thread::sleep_for(std::chrono::milliseconds(std::min<unsigned>(ms, 50)));
        }
    }

    SourceConfig config_;
    std::string spool_;
    CancelCheck cancelled_;
    std::string base_;
    Response index_;  // what the last full index response said
    std::vector<std::string> names_;
};

}  // namespace

std::unique_ptr<Source> make_http_source(const SourceConfig& config, const std::string& spool,
                                         CancelCheck cancelled) {
    return std::make_unique<HttpSource>(config, spool, std::move(cancelled));
}

}  // namespace segsync
