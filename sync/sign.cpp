#include "sync/sign.h"

#include "segcore/keys.h"
#include "segcore/signed_id.h"

namespace segsync {

std::string run_sign(const SignOptions& options) {
    segcore::KeyRing keys = segcore::KeyRing::load(options.keys_path);
    return segcore::sign_id(keys.signing_key(), options.id, options.expires);
}

}  // namespace segsync
