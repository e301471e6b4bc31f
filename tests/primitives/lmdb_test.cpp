// The LMDB helpers: an environment opens with its options, and for_each visits records in key
// order from where it is told, stops when the visitor says so and passes a visitor's code on.
#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>
#include <string>
#include <vector>

#include "primitives/lmdb.hpp"

using namespace kassa;

namespace {

struct scratch_env {
  std::string path;
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  MDB_dbi dbi = 0;
  scratch_env() {
    path = (std::filesystem::temp_directory_path() / ("kassa_lmdb_test_" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    REQUIRE(lmdb::env_open(env, path, MDB_NOSYNC, 2, 1u << 20) == 0);
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    REQUIRE(mdb_dbi_open(txn, "t", MDB_CREATE, &dbi) == 0);
    for (char c = 'a'; c <= 'e'; ++c) {
      MDB_val k{1, &c}, v{1, &c};
      REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
    }
  }
  ~scratch_env() {
    if (txn) mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
    std::filesystem::remove_all(path);
  }
  std::string keys(const MDB_val* from, char stop_at = 0, int code_at_stop = lmdb::scan_stop, int* rc = nullptr) {
    std::string seen;
    const int r = lmdb::for_each(
        txn, dbi,
        [&](const MDB_val& k, const MDB_val&) {
          const char c = *static_cast<const char*>(k.mv_data);
          if (c == stop_at) return code_at_stop;
          seen += c;
          return lmdb::scan_next;
        },
        from);
    if (rc) *rc = r;
    return seen;
  }
};

} // namespace

TEST_CASE("for_each visits every record in key order, or those from a key on", "[primitives]") {
  scratch_env s;
  int rc = -2;
  CHECK(s.keys(nullptr, 0, lmdb::scan_stop, &rc) == "abcde");
  CHECK(rc == 0);
  char from_c = 'c';
  const MDB_val from{1, &from_c};
  CHECK(s.keys(&from) == "cde");
  char after = 'z';
  const MDB_val past{1, &after};
  CHECK(s.keys(&past, 0, lmdb::scan_stop, &rc).empty());
  CHECK(rc == 0);
}

TEST_CASE("for_each stops where the visitor says and returns the visitor's code", "[primitives]") {
  scratch_env s;
  int rc = -2;
  CHECK(s.keys(nullptr, 'c', lmdb::scan_stop, &rc) == "ab");
  CHECK(rc == 0);
  CHECK(s.keys(nullptr, 'd', MDB_CORRUPTED, &rc) == "abc");
  CHECK(rc == MDB_CORRUPTED);
}

TEST_CASE("env_open hands an environment that failed to open back to its owner to close", "[primitives]") {
  MDB_env* env = reinterpret_cast<MDB_env*>(1);
  const int rc = lmdb::env_open(env, "/nonexistent/kassa/lmdb", MDB_RDONLY, 1);
  CHECK(rc != 0);
  CHECK(env != nullptr); // created, then the open failed: the owner closes it
  mdb_env_close(env);
}
