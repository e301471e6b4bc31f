// The reconciliation store's resolution journal: a resolution is journaled with the case it
// closes, once; and a store of format 1 (tests/store/data/recon_v1, before the journal) is
// upgraded in place, its cases and counters kept; so is one of format 2 (tests/store/data/recon_v2,
// before resolutions were numbered), its resolutions numbered by case id.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <string>

#include "ledger/store/recon_store.hpp"
#include "tests/store/store_fixture.hpp"

using namespace kassa;
using kassa::test::temp_dir;
namespace ks = kassa::ledger::store;
namespace pay = kassa::ledger::payments;

namespace {

std::unique_ptr<ks::recon_store> open_recon(const std::string& path) {
  ks::error err;
  auto s = ks::recon_store::open(path, ks::durability::fsync, 16ull << 20, err);
  INFO(err.message);
  REQUIRE(s);
  return s;
}

ks::recon_resolution accept_of(uint64_t case_id, const char* note) {
  ks::recon_resolution r;
  r.case_id = case_id;
  r.resolved_ns = 5000;
  r.client_id = 9;
  r.action = uint8_t(pay::case_action::accept);
  std::strncpy(r.by, "ops-anna", sizeof r.by);
  std::strncpy(r.note, note, sizeof r.note);
  return r;
}

void write_ok(ks::recon_store& s, ks::recon_batch& b) {
  const ks::error err = s.write(b);
  INFO(err.message);
  REQUIRE(err.ok());
}

} // namespace

TEST_CASE("a resolution is journaled with the case it closes, and only once", "[store][recon]") {
  temp_dir dir;
  auto s = open_recon(dir.path + "/recon");
  ks::recon_batch open;
  ks::recon_case c;
  c.kind = uint8_t(ks::case_kind::suspense);
  c.row_id = 7;
  c.provider_amount = 100;
  open.cases = {c};
  write_ok(*s, open);
  REQUIRE(open.cases[0].id == 1);

  ks::recon_batch first;
  first.resolutions = {accept_of(1, "checked with the provider"), accept_of(99, "no such case")};
  write_ok(*s, first);
  CHECK(first.resolutions_applied == std::vector<bool>{true, false});
  ks::recon_batch again;
  again.resolutions = {accept_of(1, "a second time")};
  write_ok(*s, again);
  CHECK(again.resolutions_applied == std::vector<bool>{false});

  ks::recon_resolution j;
  bool found = false;
  REQUIRE(s->get_resolution(1, j, found).ok());
  REQUIRE(found);
  CHECK(std::string(j.note) == "checked with the provider");
  CHECK(std::string(j.by) == "ops-anna");
  CHECK(j.client_id == 9);
  REQUIRE(s->get_resolution(99, j, found).ok());
  CHECK_FALSE(found);
  ks::recon_case stored;
  REQUIRE(s->get_case(1, stored, found).ok());
  CHECK(stored.status == uint8_t(ks::case_status::resolved));
  CHECK(stored.resolved_ns == 5000);
  ks::recon_counters counters;
  REQUIRE(s->read_counters(counters).ok());
  CHECK(counters.cases_open == 0);
}

TEST_CASE("a reconciliation store of format 1 is upgraded in place; its cases and counters are kept",
          "[store][recon]") {
  temp_dir dir;
  const std::string path = dir.path + "/recon";
  std::filesystem::create_directories(path);
  std::filesystem::copy_file(std::string(KASSA_STORE_TEST_DATA) + "/recon_v1/data.mdb", path + "/data.mdb");
  {
    // `kassa recon` reading the store before kassad upgraded it: the cases, no journal
    ks::error err;
    auto ro = ks::recon_store::open_read_only(path, err);
    INFO(err.message);
    REQUIRE(ro);
    std::vector<ks::recon_case> cases;
    REQUIRE(ro->load_cases(false, cases).ok());
    CHECK(cases.size() == 3);
    ks::recon_resolution j;
    bool found = true;
    REQUIRE(ro->get_resolution(2, j, found).ok());
    CHECK_FALSE(found);
  }
  auto s = open_recon(path);
  std::vector<ks::recon_case> cases;
  REQUIRE(s->load_cases(false, cases).ok());
  REQUIRE(cases.size() == 3);
  CHECK(cases[0].kind == uint8_t(ks::case_kind::suspense));
  CHECK(cases[1].status == uint8_t(ks::case_status::resolved));
  CHECK(cases[1].resolved_ns == 2000);
  CHECK(cases[2].provider_amount == 1021);
  ks::recon_counters counters;
  REQUIRE(s->read_counters(counters).ok());
  CHECK(counters.cases_open == 2);
  CHECK(counters.cases_total == 3);
  CHECK(counters.matched == 4);
  std::map<std::string, uint64_t> cursors;
  REQUIRE(s->load_cursors(cursors).ok());
  CHECK(cursors["alpha"] == 5);
  // the case resolved under format 1 has no journal entry; one resolved now has
  ks::recon_resolution j;
  bool found = true;
  REQUIRE(s->get_resolution(2, j, found).ok());
  CHECK_FALSE(found);
  ks::recon_batch b;
  b.resolutions = {accept_of(1, "after the upgrade")};
  write_ok(*s, b);
  REQUIRE(s->get_resolution(1, j, found).ok());
  CHECK(found);
  // a page: open cases from id 2 on
  cases.clear();
  REQUIRE(s->load_cases(true, 2, 10, cases).ok());
  REQUIRE(cases.size() == 1);
  CHECK(cases[0].id == 3);
  s.reset();
  // opened again: version 3 now, read only too
  ks::error err;
  auto ro = ks::recon_store::open_read_only(path, err);
  INFO(err.message);
  REQUIRE(ro);
  REQUIRE(ro->get_resolution(1, j, found).ok());
  CHECK(found);
}

TEST_CASE("resolutions are numbered in the order they were made, and read back from a sequence on",
          "[store][recon]") {
  temp_dir dir;
  auto s = open_recon(dir.path + "/recon");
  ks::recon_batch cases;
  for (uint64_t i = 1; i <= 3; ++i) {
    ks::recon_case c;
    c.kind = uint8_t(ks::case_kind::amount_mismatch);
    c.payment_id = i;
    c.internal_amount = 1000;
    c.provider_amount = 1000 + i;
    cases.cases.push_back(c);
  }
  write_ok(*s, cases);
  ks::recon_batch first;
  first.resolutions = {accept_of(3, "third case first"), accept_of(1, "then the first")};
  write_ok(*s, first);
  ks::recon_batch again;
  again.resolutions = {accept_of(3, "twice: skipped, not numbered"), accept_of(2, "the last")};
  write_ok(*s, again);
  std::vector<ks::recon_resolution_entry> out;
  REQUIRE(s->resolutions_after(0, 10, out).ok());
  REQUIRE(out.size() == 3);
  CHECK(out[0].sequence == 1);
  CHECK(out[0].resolution.case_id == 3);
  CHECK(out[1].resolution.case_id == 1);
  CHECK(out[2].sequence == 3);
  CHECK(out[2].resolution.case_id == 2);
  out.clear();
  REQUIRE(s->resolutions_after(1, 1, out).ok()); // bounded by the limit
  REQUIRE(out.size() == 1);
  CHECK(out[0].sequence == 2);
  out.clear();
  REQUIRE(s->resolutions_after(3, 10, out).ok());
  CHECK(out.empty());
  ks::recon_counters counters;
  REQUIRE(s->read_counters(counters).ok());
  CHECK(counters.resolution_sequence_last == 3);
}

TEST_CASE("a reconciliation store of format 2 is upgraded in place; its resolutions are numbered by case id",
          "[store][recon]") {
  temp_dir dir;
  const std::string path = dir.path + "/recon";
  std::filesystem::create_directories(path);
  std::filesystem::copy_file(std::string(KASSA_STORE_TEST_DATA) + "/recon_v2/data.mdb", path + "/data.mdb");
  {
    // a reader before kassad upgraded it: the journal, but nothing to tail yet
    ks::error err;
    auto ro = ks::recon_store::open_read_only(path, err);
    INFO(err.message);
    REQUIRE(ro);
    ks::recon_resolution j;
    bool found = false;
    REQUIRE(ro->get_resolution(1, j, found).ok());
    CHECK(found);
    std::vector<ks::recon_resolution_entry> out;
    REQUIRE(ro->resolutions_after(0, 10, out).ok());
    CHECK(out.empty());
  }
  auto s = open_recon(path);
  std::vector<ks::recon_resolution_entry> out;
  REQUIRE(s->resolutions_after(0, 10, out).ok());
  REQUIRE(out.size() == 2);
  CHECK(out[0].sequence == 1);
  CHECK(out[0].resolution.case_id == 1);
  CHECK(out[0].resolution.action == uint8_t(pay::case_action::book));
  CHECK(out[0].resolution.direction == uint8_t(pay::case_direction::from_suspense));
  CHECK(out[0].resolution.amount == 100);
  CHECK(out[1].sequence == 2);
  CHECK(out[1].resolution.case_id == 3);
  CHECK(out[1].resolution.action == uint8_t(pay::case_action::accept));
  ks::recon_counters counters;
  REQUIRE(s->read_counters(counters).ok());
  CHECK(counters.cases_open == 1);
  CHECK(counters.cases_total == 3);
  CHECK(counters.resolution_sequence_last == 2);
  // the next resolution follows them
  ks::recon_batch b;
  b.resolutions = {accept_of(2, "after the upgrade")};
  write_ok(*s, b);
  out.clear();
  REQUIRE(s->resolutions_after(2, 10, out).ok());
  REQUIRE(out.size() == 1);
  CHECK(out[0].sequence == 3);
  CHECK(out[0].resolution.case_id == 2);
  s.reset();
  // opened again (format 3 now): not numbered a second time
  s = open_recon(path);
  out.clear();
  REQUIRE(s->resolutions_after(0, 10, out).ok());
  CHECK(out.size() == 3);
}
