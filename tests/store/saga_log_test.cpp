// The saga log as the directory sees it: what is written comes back after a restart, in id
// order; id_last outlives the records; a damaged record or a full map is a clean error.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "ledger/store/layout.hpp"
#include "ledger/store/saga_log.hpp"
#include "ledger/system_ids.hpp"
#include "primitives/crc32c.hpp"
#include "tests/store/store_fixture.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;
namespace ks = kassa::ledger::store;

namespace {

constexpr uint64_t map_size_bytes = 16ull << 20;

std::unique_ptr<ks::saga_log> open_ok(const std::string& path,
                                      ks::durability d = ks::durability::fsync,
                                      uint64_t map_size = map_size_bytes) {
  ks::error err;
  auto log = ks::saga_log::open(path, d, map_size, err);
  INFO(err.message);
  REQUIRE(log);
  REQUIRE(err.ok());
  return log;
}

void write_ok(ks::saga_log& log, const std::vector<ks::saga>& add,
              const std::vector<uint64_t>& remove = {}) {
  ks::error err = log.write(add, remove);
  INFO(err.message);
  REQUIRE(err.ok());
}

std::vector<ks::saga> load_ok(const ks::saga_log& log) {
  std::vector<ks::saga> out;
  ks::error err = log.load(out);
  INFO(err.message);
  REQUIRE(err.ok());
  return out;
}

// A saga whose legs use the full width of shard and id, so a byte order mistake shows.
ks::saga make_saga(uint64_t id, uint32_t legs) {
  ks::saga s;
  s.id = id;
  for (uint32_t i = 0; i < legs; ++i)
    s.legs.push_back({i * 0x01010101u + uint32_t(id), make_u128(0xA000'0000'0000'0000ull + id, i + 1)});
  return s;
}

void require_same(const std::vector<ks::saga>& expected, const std::vector<ks::saga>& loaded) {
  REQUIRE(loaded.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CHECK(loaded[i].id == expected[i].id);
    REQUIRE(loaded[i].legs.size() == expected[i].legs.size());
    for (size_t j = 0; j < expected[i].legs.size(); ++j) {
      CHECK(loaded[i].legs[j].shard == expected[i].legs[j].shard);
      CHECK(loaded[i].legs[j].id == expected[i].legs[j].id);
    }
  }
}

std::vector<uint64_t> ids_of(const std::vector<ks::saga>& sagas) {
  std::vector<uint64_t> ids;
  for (const auto& s : sagas) ids.push_back(s.id);
  return ids;
}

// Replaces the raw record of saga `id` in a closed log with what `edit` makes of it.
template <class Edit> void tamper(const std::string& path, uint64_t id, Edit edit) {
  raw_lmdb raw(path);
  ks::layout::key_u64 key(id);
  MDB_val k{sizeof key.bytes, key.bytes}, v;
  MDB_dbi sagas = raw.dbi("sagas");
  REQUIRE(mdb_get(raw.txn, sagas, &k, &v) == 0);
  std::vector<uint8_t> bytes(static_cast<uint8_t*>(v.mv_data),
                             static_cast<uint8_t*>(v.mv_data) + v.mv_size);
  edit(bytes);
  MDB_val nv{bytes.size(), bytes.data()};
  REQUIRE(mdb_put(raw.txn, sagas, &k, &nv, 0) == 0);
  raw.commit();
}

} // namespace

TEST_CASE("sagas with several legs load back whole and in id order", "[store][saga]") {
  temp_dir dir;
  auto log = open_ok(dir.path + "/sagas");
  CHECK(log->id_last() == 0);
  CHECK(load_ok(*log).empty());

  write_ok(*log, {make_saga(7, 3), make_saga(2, 2)});
  write_ok(*log, {make_saga(300, 5), make_saga(1, 0)}); // 300 > 255: keys compare as numbers
  CHECK(log->id_last() == 300);
  require_same({make_saga(1, 0), make_saga(2, 2), make_saga(7, 3), make_saga(300, 5)},
               load_ok(*log));
}

TEST_CASE("a removed saga leaves the others, and removing an absent id is no error", "[store][saga]") {
  temp_dir dir;
  auto log = open_ok(dir.path);
  write_ok(*log, {make_saga(1, 2), make_saga(2, 2), make_saga(3, 2)});
  write_ok(*log, {}, {2, 99});
  CHECK(ids_of(load_ok(*log)) == std::vector<uint64_t>{1, 3});

  // One write adds, then removes: a saga added and removed together is gone.
  write_ok(*log, {make_saga(4, 2), make_saga(5, 1)}, {1, 4});
  require_same({make_saga(3, 2), make_saga(5, 1)}, load_ok(*log));
  CHECK(log->id_last() == 5);
}

TEST_CASE("id_last survives the removal of every saga and a reopen", "[store][saga]") {
  temp_dir dir;
  {
    auto log = open_ok(dir.path);
    write_ok(*log, {make_saga(41, 2), make_saga(42, 2)});
    write_ok(*log, {}, {41, 42});
    CHECK(load_ok(*log).empty());
    CHECK(log->id_last() == 42);
    write_ok(*log, {make_saga(10, 1)}); // a smaller id does not lower it
    CHECK(log->id_last() == 42);
    write_ok(*log, {}, {10});
  }
  auto log = open_ok(dir.path);
  CHECK(log->id_last() == 42);
  CHECK(load_ok(*log).empty());
}

TEST_CASE("sagas come back after closing and reopening the log", "[store][saga]") {
  temp_dir dir;
  {
    auto log = open_ok(dir.path);
    write_ok(*log, {make_saga(1, 2), make_saga(2, 4)});
    write_ok(*log, {make_saga(3, 1)}, {1});
  }
  auto log = open_ok(dir.path);
  CHECK(log->id_last() == 3);
  require_same({make_saga(2, 4), make_saga(3, 1)}, load_ok(*log));
}

TEST_CASE("an empty write changes nothing", "[store][saga]") {
  temp_dir dir;
  auto log = open_ok(dir.path);
  write_ok(*log, {make_saga(5, 2)});
  write_ok(*log, {}, {});
  CHECK(log->id_last() == 5);
  require_same({make_saga(5, 2)}, load_ok(*log));
}

TEST_CASE("a saga with id 0 is refused", "[store][saga]") {
  temp_dir dir;
  auto log = open_ok(dir.path);
  ks::error err = log->write({make_saga(0, 2)}, {});
  CHECK(err.code == ks::errc::invalid_argument);
  CHECK(load_ok(*log).empty());
  CHECK(log->id_last() == 0);
}

TEST_CASE("a tampered saga record is reported corrupt on load", "[store][saga]") {
  temp_dir dir;
  {
    auto log = open_ok(dir.path);
    write_ok(*log, {make_saga(1, 2), make_saga(2, 3)});
  }
  auto expect_corrupt = [&](const char* what) {
    auto log = open_ok(dir.path);
    std::vector<ks::saga> out;
    ks::error err = log->load(out);
    CHECK(err.code == ks::errc::corrupt);
    CHECK_THAT(err.message, Catch::Contains("saga 2") && Catch::Contains(what));
  };

  SECTION("a flipped bit in a leg id fails the checksum") {
    tamper(dir.path, 2, [](std::vector<uint8_t>& b) { b[1 + 4 + 20 + 7] ^= 0x10; });
    expect_corrupt("checksum");
  }
  SECTION("a flipped bit in the checksum itself fails it") {
    tamper(dir.path, 2, [](std::vector<uint8_t>& b) { b.back() ^= 0x01; });
    expect_corrupt("checksum");
  }
  SECTION("a truncated record has a bad length") {
    tamper(dir.path, 2, [](std::vector<uint8_t>& b) { b.resize(b.size() - 3); });
    expect_corrupt("bad length");
  }
  SECTION("a leg count that disagrees with the length is caught, checksum or not") {
    tamper(dir.path, 2, [](std::vector<uint8_t>& b) {
      uint32_t count = 2; // one leg fewer than the record holds (after the kind byte)
      std::memcpy(b.data() + 1, &count, 4);
      uint32_t crc = crc32c(b.data(), b.size() - 4);
      std::memcpy(b.data() + b.size() - 4, &crc, 4);
    });
    expect_corrupt("holds 2 legs");
  }
}

TEST_CASE("open refuses a saga log written by an unknown format", "[store][saga]") {
  temp_dir dir;
  { open_ok(dir.path); }
  {
    raw_lmdb raw(dir.path);
    const char* key = "format_version";
    uint64_t version = ks::saga_format_version + 1;
    MDB_val k{std::strlen(key), const_cast<char*>(key)}, v{8, &version};
    REQUIRE(mdb_put(raw.txn, raw.dbi("meta"), &k, &v, 0) == 0);
    raw.commit();
  }
  ks::error err;
  CHECK_FALSE(ks::saga_log::open(dir.path, ks::durability::fsync, map_size_bytes, err));
  CHECK(err.code == ks::errc::version_mismatch);
  CHECK_THAT(err.message, Catch::Contains("format version " + std::to_string(ks::saga_format_version + 1)));
}

TEST_CASE("open refuses a saga log whose records lie beyond id_last", "[store][saga]") {
  temp_dir dir;
  {
    auto log = open_ok(dir.path);
    write_ok(*log, {make_saga(9, 1)});
  }
  {
    raw_lmdb raw(dir.path);
    const char* key = "id_last";
    uint64_t id_last = 3;
    MDB_val k{std::strlen(key), const_cast<char*>(key)}, v{8, &id_last};
    REQUIRE(mdb_put(raw.txn, raw.dbi("meta"), &k, &v, 0) == 0);
    raw.commit();
  }
  ks::error err;
  CHECK_FALSE(ks::saga_log::open(dir.path, ks::durability::fsync, map_size_bytes, err));
  CHECK(err.code == ks::errc::corrupt);
  CHECK_THAT(err.message, Catch::Contains("meta.id_last is 3"));
}

TEST_CASE("a full saga log returns map_full and stays usable", "[store][saga]") {
  temp_dir dir;
  constexpr uint64_t small_map_bytes = 256u << 10;
  {
    auto log = open_ok(dir.path, ks::durability::fsync, small_map_bytes);
    write_ok(*log, {make_saga(1, 2)});

    ks::error err = log->write({make_saga(2, 50'000)}, {1}); // ~1 MB: cannot fit
    REQUIRE(err.code == ks::errc::map_full);
    CHECK_THAT(err.message, Catch::Contains("saga log is full") && Catch::Contains("map size"));
    // The failed write left nothing behind: neither its add, its remove nor its id.
    CHECK(log->id_last() == 1);
    require_same({make_saga(1, 2)}, load_ok(*log));

    write_ok(*log, {make_saga(3, 4)}, {1});
    CHECK(log->id_last() == 3);
    require_same({make_saga(3, 4)}, load_ok(*log));
  }
  auto log = open_ok(dir.path, ks::durability::fsync, small_map_bytes);
  CHECK(log->id_last() == 3);
  require_same({make_saga(3, 4)}, load_ok(*log));
}

TEST_CASE("a saga log without fsync writes, removes and reopens", "[store][saga]") {
  temp_dir dir;
  {
    auto log = open_ok(dir.path, ks::durability::none);
    write_ok(*log, {make_saga(1, 2), make_saga(2, 3)});
    write_ok(*log, {}, {1});
  }
  auto log = open_ok(dir.path, ks::durability::none);
  CHECK(log->id_last() == 2);
  require_same({make_saga(2, 3)}, load_ok(*log));
}

TEST_CASE("open creates a missing directory and refuses an empty path or a tiny map", "[store][saga]") {
  temp_dir dir;
  auto log = open_ok(dir.path + "/data/sagas");
  CHECK(log->id_last() == 0);
  ks::error err;
  CHECK_FALSE(ks::saga_log::open("", ks::durability::fsync, map_size_bytes, err));
  CHECK(err.code == ks::errc::invalid_argument);
  CHECK_FALSE(ks::saga_log::open(dir.path + "/other", ks::durability::fsync, 4096, err));
  CHECK(err.code == ks::errc::invalid_argument);
}

// Copies the saga log fixture tests/store/data/<name> (written by an earlier format's code)
// into `dir`.
static void copy_fixture(const std::string& name, const std::string& dir) {
  std::filesystem::copy_file(std::string(KASSA_SOURCE_DIR) + "/tests/store/data/" + name + "/data.mdb",
                             dir + "/data.mdb");
}

// The format version a closed saga log at `dir` has stored.
static uint64_t stored_version(const std::string& dir) {
  raw_lmdb raw(dir);
  const char* key = "format_version";
  MDB_val k{std::strlen(key), const_cast<char*>(key)}, v;
  REQUIRE(mdb_get(raw.txn, raw.dbi("meta"), &k, &v) == 0);
  uint64_t version = 0;
  std::memcpy(&version, v.mv_data, 8);
  raw.commit();
  return version;
}

// tests/store/data/saga_log_v1 was written by the saga log of format version 1 (the program
// beside it): sagas 7 (legs (0, 1001), (2, 1001)) and 9 (legs (1, 5:77), (3, 5:77), (1, 5:78)),
// id_last 11.
TEST_CASE("a saga log of format version 1 is upgraded in place and its legs load back", "[store][saga][upgrade]") {
  temp_dir dir;
  copy_fixture("saga_log_v1", dir.path);
  {
    auto log = open_ok(dir.path);
    CHECK(log->id_last() == 11);
    auto loaded = load_ok(*log);
    REQUIRE(loaded.size() == 2);
    CHECK(loaded[0].id == 7);
    REQUIRE(loaded[0].legs.size() == 2);
    CHECK(loaded[0].legs[1].shard == 2);
    CHECK(loaded[0].legs[1].id == make_u128(0, 1001));
    CHECK(loaded[1].id == 9);
    REQUIRE(loaded[1].legs.size() == 3);
    CHECK(loaded[1].legs[2].shard == 1);
    CHECK(loaded[1].legs[2].id == make_u128(5, 78));
    CHECK_FALSE(loaded[1].redo());
    write_ok(*log, {}, {7});
  }
  CHECK(stored_version(dir.path) == ks::saga_format_version);
  auto log = open_ok(dir.path);
  auto loaded = load_ok(*log);
  REQUIRE(loaded.size() == 1);
  CHECK(loaded[0].id == 9);
}

// tests/store/data/saga_log_v2 was written by the saga log of format version 2 (the program
// beside it): saga 5, a redo record (a clearing account in shard 0, transfer 301's legs in
// shards 0 and 1), id_last 6.
TEST_CASE("a saga log of format version 2 is marked version 3 in place and its redo records load back", "[store][saga][upgrade]") {
  temp_dir dir;
  copy_fixture("saga_log_v2", dir.path);
  {
    auto log = open_ok(dir.path);
    CHECK(log->id_last() == 6);
    auto loaded = load_ok(*log);
    REQUIRE(loaded.size() == 1);
    CHECK(loaded[0].id == 5);
    CHECK(loaded[0].redo());
    REQUIRE(loaded[0].accounts.size() == 1);
    CHECK(loaded[0].accounts[0].value.id == kassa::ledger::system_ids::clearing(0, 1, 1));
    REQUIRE(loaded[0].transfers.size() == 2);
    CHECK(loaded[0].transfers[1].shard == 1);
    CHECK(loaded[0].transfers[1].system == 2);
    CHECK(loaded[0].transfers[1].value.id == make_u128(0, 301));
    CHECK(loaded[0].transfers[1].value.amount == 25);
  }
  CHECK(stored_version(dir.path) == 3);
  auto log = open_ok(dir.path);
  CHECK(load_ok(*log).size() == 1);
}

TEST_CASE("a redo record keeps every account and transfer with its shard and mark", "[store][saga]") {
  temp_dir dir;
  ks::saga s;
  s.id = 3;
  for (uint32_t i = 0; i < 3; ++i) {
    ks::saga_account a;
    a.shard = 0x01020304u * (i + 1);
    a.system = uint8_t(i % 2);
    a.value.id = make_u128(0xC1EA0000ull + i, 0xFFFF'0000'0000'0001ull);
    a.value.ledger = 700 + i;
    s.accounts.push_back(a);
  }
  for (uint32_t i = 0; i < 5; ++i) {
    ks::saga_transfer t;
    t.shard = i;
    t.system = uint8_t(i == 4);
    t.value.id = make_u128(i, 0xABCD'EF01'2345'6789ull);
    t.value.amount = make_u128(0x1000 + i, 7);
    t.value.flags = uint16_t(i);
    s.transfers.push_back(t);
  }
  {
    auto log = open_ok(dir.path);
    write_ok(*log, {s, make_saga(4, 2)});
  }
  auto log = open_ok(dir.path);
  auto loaded = load_ok(*log);
  REQUIRE(loaded.size() == 2);
  REQUIRE(loaded[0].redo());
  REQUIRE(loaded[0].accounts.size() == 3);
  REQUIRE(loaded[0].transfers.size() == 5);
  for (uint32_t i = 0; i < 3; ++i) {
    CHECK(loaded[0].accounts[i].shard == s.accounts[i].shard);
    CHECK(loaded[0].accounts[i].system == s.accounts[i].system);
    CHECK(std::memcmp(&loaded[0].accounts[i].value, &s.accounts[i].value, 128) == 0);
  }
  for (uint32_t i = 0; i < 5; ++i) {
    CHECK(loaded[0].transfers[i].shard == s.transfers[i].shard);
    CHECK(loaded[0].transfers[i].system == s.transfers[i].system);
    CHECK(std::memcmp(&loaded[0].transfers[i].value, &s.transfers[i].value, 128) == 0);
  }
  CHECK_FALSE(loaded[1].redo());
  CHECK(loaded[1].legs.size() == 2);
}
