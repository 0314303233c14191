// Shared by the libFuzzer targets: an invariant that must hold for every
// input. A broken one aborts, which libFuzzer reports as a crash and saves
// the input (README "Fuzzing").
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                          \
    do {                                                                               \
        if (!(condition)) {                                                            \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
                         #condition);                                                  \
            std::abort();                                                              \
        }                                                                              \
    } while (0)
