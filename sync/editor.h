// Read-modify-write access to profiles and aliases inside one LMDB write
// transaction: what delta batches and the RFM computation do, in place on
// the live snapshot or on a snapshot still being built.
#pragma once

#include <optional>
#include <string_view>

#include "segcore/lmdb.h"
#include "segcore/schema.h"
#include "sync/validate.h"

namespace segsync {

class ProfileEditor {
public:
    // Loads the segment and attribute catalogues through `txn`.
    explicit ProfileEditor(segcore::Txn& txn);

    const Catalogue& segments() const noexcept { return segments_; }
    AttributeCatalogue& attributes() noexcept { return attributes_; }

    std::optional<segcore::schema::ProfileRecord> get(const Visitor& visitor) const;
    // Stores the record; a profile with neither segments nor attributes is
    // removed instead (it would read exactly like an unknown visitor).
    void put(const Visitor& visitor, const segcore::schema::ProfileRecord& record);
    bool erase(const Visitor& visitor);
    // anonymous id -> known id, replacing an earlier alias of that id.
    void put_alias(std::string_view anonymous_id, std::string_view known_id);
    // Writes the attribute names interned since construction; call before
    // the transaction commits.
    void store_new_attributes();

    segcore::Txn& txn() noexcept { return txn_; }
    MDB_dbi profiles_db() const noexcept { return profiles_db_; }

private:
    segcore::Txn& txn_;
    MDB_dbi profiles_db_ = 0;
    MDB_dbi attributes_db_ = 0;
    std::optional<MDB_dbi> aliases_db_;  // created on first use
    Catalogue segments_;
    AttributeCatalogue attributes_;
    std::size_t stored_attributes_ = 0;  // of attributes_.added()
};

}  // namespace segsync
