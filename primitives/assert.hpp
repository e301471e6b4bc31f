#pragma once
// Assertions that stay on in release builds: a broken invariant in a money system must stop
// the process, not corrupt the books.
#include <cstdio>
#include <cstdlib>

#define KASSA_ASSERT(cond)                                                                   \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "kassa: assertion failed: %s at %s:%d\n", #cond, __FILE__,       \
                   __LINE__);                                                                \
      std::fflush(stderr);                                                                   \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)
