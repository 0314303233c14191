// LMDB trusts its data file: a reader follows the page numbers, node offsets
// and sizes it finds there, so a damaged data.mdb (a flipped bit, a bad copy)
// can make it read outside the file and kill the process with SIGSEGV or
// SIGBUS. These checks read the file with pread(2), never through the map,
// and refuse it before LMDB touches anything they have not bounded. They
// know the on-disk format of LMDB 0.9 on 64-bit Linux, and only the plain
// B-trees segedge writes (no MDB_DUPSORT, no integer keys).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace segcore {

class LmdbFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Before the first transaction: both meta pages are there and name the same
// sane page size (LMDB finds its meta pages through the map with it, and
// touching the map past the end of the file is SIGBUS). Throws LmdbFileError.
void check_lmdb_header(const std::string& data_file);

// With a read transaction open (so a writer cannot reuse its pages): every
// page reachable from the meta that transaction `txnid` uses — the main tree
// and each named database in it — has a header, node offsets, key and data
// sizes and child or overflow page numbers that stay inside the page and the
// file, and each page is reached once, at the depth its tree records.
// Throws LmdbFileError naming the first bad page. Returns false when the
// transaction's meta page holds another transaction (a writer committed
// twice since it began, or the page is damaged): begin a new transaction and
// call again.
bool check_lmdb_tree(const std::string& data_file, std::uint64_t txnid);

}  // namespace segcore
