// The payments store's provider ids: an installation id drawn when the store is created, a new
// generation at each restore, and the upgrade of a store of format 1 (tests/store/data) whose
// rows keep their legacy ids.
#include <cstring>
#include <filesystem>
#include <set>
#include <string>

#include "ledger/payments/ids.hpp"
#include "ledger/store/payments_store.hpp"
#include "tests/store/store_fixture.hpp"

using namespace kassa;
using kassa::test::temp_dir;
namespace ks = kassa::ledger::store;
namespace pay = kassa::ledger::payments;

namespace {

std::unique_ptr<ks::payments_store> open_store(const std::string& path) {
  ks::error err;
  auto s = ks::payments_store::open(path, ks::durability::fsync, 64ull << 20, err);
  INFO(err.message);
  REQUIRE(s);
  return s;
}

void write_rows(ks::payments_store& s, uint64_t first, uint64_t last) {
  ks::payments_batch b;
  for (uint64_t seq = first; seq <= last; ++seq) {
    pay::order row{};
    row.id = make_u128(0xB0, seq);
    row.sequence = seq;
    row.kind = uint16_t(pay::kind::topup);
    row.state = uint16_t(pay::order_state::processing);
    b.rows.push_back(row);
  }
  const ks::error err = s.write(b);
  INFO(err.message);
  REQUIRE(err.ok());
}

// A restore as an operator makes it: the backup's files copied into a new directory.
void copy_store(const std::string& from, const std::string& to) {
  std::filesystem::create_directories(to);
  std::filesystem::copy_file(std::filesystem::path(from) / "data.mdb", std::filesystem::path(to) / "data.mdb");
}

std::set<u128> ids_of(const ks::payments_store& s, uint64_t first, uint64_t last) {
  std::set<u128> out;
  for (uint64_t seq = first; seq <= last; ++seq)
    for (auto role : {pay::call_role::main, pay::call_role::compensation}) out.insert(s.ids().id(seq, role));
  return out;
}

bool disjoint(const std::set<u128>& a, const std::set<u128>& b) {
  for (const u128& x : a)
    if (b.count(x)) return false;
  return true;
}

} // namespace

TEST_CASE("two data directories give different provider ids for the same sequence", "[store][payments][ids]") {
  temp_dir a, b;
  auto sa = open_store(a.path + "/payments");
  auto sb = open_store(b.path + "/payments");
  CHECK(sa->ids().installation_id() != sb->ids().installation_id());
  CHECK(pay::installation_id_valid(sa->ids().installation_id()));
  REQUIRE(sa->ids().generations().size() == 1);
  CHECK(sa->ids().generations()[0].number == 1);
  CHECK(sa->ids().generations()[0].sequence_first == 1);
  CHECK(disjoint(ids_of(*sa, 1, 100), ids_of(*sb, 1, 100)));
  // the installation id is durable: a restart sends the same ids
  const u128 first = sa->ids().id(1);
  sa.reset();
  sa = open_store(a.path + "/payments");
  CHECK(sa->ids().id(1) == first);
  CHECK(sa->ids().generations().size() == 1);
}

TEST_CASE("a restored copy sends none of the ids its original sent after the backup", "[store][payments][ids]") {
  temp_dir dir;
  const std::string original = dir.path + "/original", backup = dir.path + "/backup";
  auto s = open_store(original);
  write_rows(*s, 1, 3);
  const std::set<u128> before_backup = ids_of(*s, 1, 3);
  s.reset();
  copy_store(original, backup);
  s = open_store(original);
  write_rows(*s, 4, 6); // the original goes on after the backup: ids of rows 4.. are sent
  const std::set<u128> sent = ids_of(*s, 1, 20);
  s.reset();

  // Restored twice from the same backup (the first restore lost too): three lines of rows
  // 4.. that must not share an id.
  std::set<u128> restored_sent[2];
  for (int n = 0; n < 2; ++n) {
    const std::string restored = dir.path + "/restored-" + std::to_string(n);
    copy_store(backup, restored);
    auto r = open_store(restored);
    uint32_t number = 0;
    const ks::error err = r->begin_generation(number);
    INFO(err.message);
    REQUIRE(err.ok());
    CHECK(number == 2);
    CHECK(r->ids().installation_id() != 0);
    // the next row's sequence is beyond any the original can have reached since the backup,
    // so that the ledger transfer ids of its rows are not used again either
    const uint64_t next = r->sequence_last() + 1;
    CHECK(next == 4 + pay::restore_sequence_gap);
    CHECK(r->ids().generations().back().sequence_first == next);
    // rows that were in the backup keep their ids (a payment in flight is asked under its id)
    CHECK(ids_of(*r, 1, 3) == before_backup);
    write_rows(*r, next, next + 2);
    CHECK(r->sequence_last() == next + 2);
    restored_sent[n] = ids_of(*r, next, next + 16);
    CHECK(disjoint(restored_sent[n], sent));
    // even under the original's sequences the new generation's ids are others
    for (uint64_t seq = 4; seq <= 20; ++seq)
      CHECK(sent.count(pay::payment_id(r->ids().issuer(), seq)) == 0);
    uint64_t seq = 0;
    pay::call_role role = pay::call_role::main;
    CHECK(r->ids().decode(r->ids().id(next + 1), seq, role));
    CHECK(seq == next + 1);
    // the original's id for its row 5 names no row here, now or later: the copy skipped 5
    auto o = open_store(original);
    if (r->ids().decode(o->ids().id(5), seq, role)) {
      pay::order row{};
      bool found = true;
      REQUIRE(r->find_sequence(seq, row, found).ok());
      CHECK_FALSE(found);
    }
    // the generation is durable
    const u128 after = r->ids().id(next + 1);
    r.reset();
    r = open_store(restored);
    CHECK(r->ids().id(next + 1) == after);
    CHECK(r->sequence_last() == next + 2);
  }
  CHECK(disjoint(restored_sent[0], restored_sent[1]));
}

TEST_CASE("a copy marked restore_pending begins a new generation at its first open, once", "[store][payments][ids]") {
  temp_dir dir;
  auto s = open_store(dir.path + "/original");
  write_rows(*s, 1, 2);
  const u128 third = s->ids().id(3);
  {
    const ks::error err = s->mark_restore_pending();
    REQUIRE(err.ok());
  }
  s.reset();
  // the mark is in the copy and in the original alike; kassa backup marks only the copy
  copy_store(dir.path + "/original", dir.path + "/copy");
  auto c = open_store(dir.path + "/copy");
  CHECK(c->generation_begun_at_open());
  REQUIRE(c->ids().generations().size() == 2);
  const uint64_t next = 3 + pay::restore_sequence_gap;
  CHECK(c->ids().generations()[1].sequence_first == next);
  CHECK(c->sequence_last() + 1 == next);
  CHECK(u128_hi(c->ids().id(next)) != u128_hi(third));
  CHECK(c->ids().id(2) == pay::payment_id(pay::issuer_of(c->ids().installation_id(), c->ids().generations()[0].nonce), 2));
  const u128 after = c->ids().id(next);
  c.reset();
  c = open_store(dir.path + "/copy");
  CHECK_FALSE(c->generation_begun_at_open());
  CHECK(c->ids().generations().size() == 2);
  CHECK(c->ids().id(next) == after);
  CHECK(c->sequence_last() + 1 == next);
}

TEST_CASE("a payments store of format 1 is upgraded in place; its rows keep their legacy ids", "[store][payments][ids]") {
  temp_dir dir;
  const std::string path = dir.path + "/payments";
  copy_store(std::string(KASSA_STORE_TEST_DATA) + "/payments-v1", path);
  {
    // an offline reader of the store before kassad upgraded it: legacy ids only
    ks::error err;
    auto ro = ks::payments_store::open_read_only(path, err);
    INFO(err.message);
    REQUIRE(ro);
    CHECK(ro->ids().generations().empty());
    CHECK(ro->ids().id(1) == pay::legacy_payment_id(1));
  }
  auto s = open_store(path);
  CHECK(s->sequence_last() == 3);
  REQUIRE(s->ids().generations().size() == 1);
  CHECK(s->ids().generations()[0].sequence_first == 4);
  uint64_t version = 0;
  bool found = false;
  REQUIRE(s->get_meta("format_version", version, found).ok());
  CHECK((found && version == ks::payments_format_version));
  // The top-up whose outcome was unknown is still asked, and called back, under its old id.
  pay::order row{};
  REQUIRE(s->find_sequence(1, row, found).ok());
  REQUIRE(found);
  CHECK(row.state == uint16_t(pay::order_state::unknown));
  CHECK(row.amount == 1000);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    CHECK(s->ids().id(seq) == make_u128(0x4B41'5353'0000'0001ull, seq));
    uint64_t decoded = 0;
    pay::call_role role = pay::call_role::compensation;
    CHECK(s->ids().decode(pay::legacy_payment_id(seq), decoded, role));
    CHECK((decoded == seq && role == pay::call_role::main));
  }
  // New rows get ids of the new format.
  write_rows(*s, 4, 4);
  pay::payment_id_parts parts;
  REQUIRE(pay::decode_payment_id(s->ids().id(4), parts));
  CHECK_FALSE(parts.legacy);
  CHECK(parts.issuer == s->ids().issuer());
  uint64_t decoded = 0;
  pay::call_role role = pay::call_role::main;
  CHECK_FALSE(s->ids().decode(pay::legacy_payment_id(4), decoded, role));
  // The journal and keys are untouched; a second open changes nothing.
  std::vector<ks::journal_entry> journal;
  REQUIRE(s->journal_after(0, 10, journal).ok());
  CHECK(journal.size() == 3);
  pay::payment_command key{};
  REQUIRE(s->get_key(make_u128(0, 2002), key, found).ok());
  CHECK((found && key.amount == 2000));
  const u128 four = s->ids().id(4);
  s.reset();
  s = open_store(path);
  CHECK(s->ids().generations().size() == 1);
  CHECK(s->ids().id(4) == four);
  CHECK(s->ids().id(1) == pay::legacy_payment_id(1));
}

TEST_CASE("a payments store of a newer format is refused", "[store][payments]") {
  temp_dir dir;
  const std::string path = dir.path + "/payments";
  open_store(path).reset();
  {
    kassa::test::raw_lmdb raw(path);
    const uint64_t newer = ks::payments_format_version + 1;
    MDB_dbi meta = raw.dbi("meta");
    const char* key = "format_version";
    MDB_val k{std::strlen(key), const_cast<char*>(key)}, v{sizeof newer, const_cast<uint64_t*>(&newer)};
    REQUIRE(mdb_put(raw.txn, meta, &k, &v, 0) == 0);
    raw.commit();
  }
  ks::error err;
  CHECK_FALSE(ks::payments_store::open(path, ks::durability::fsync, 64ull << 20, err));
  CHECK(err.code == ks::errc::version_mismatch);
}
