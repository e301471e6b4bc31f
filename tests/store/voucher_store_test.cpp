// The accounting store: corrections and journal vouchers move their own cursors in one
// transaction, a range is never counted twice, and a store of format 1
// (tests/store/data/accounting_v1, before the reconciliation cursor) is upgraded in place.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <string>

#include "ledger/payments/gl.hpp"
#include "ledger/store/voucher_store.hpp"
#include "tests/store/store_fixture.hpp"

using namespace kassa;
using kassa::test::temp_dir;
namespace ks = kassa::ledger::store;
namespace pay = kassa::ledger::payments;

namespace {

std::unique_ptr<ks::voucher_store> open_vouchers(const std::string& path) {
  ks::error err;
  auto s = ks::voucher_store::open(path, ks::durability::fsync, 16ull << 20, err);
  INFO(err.message);
  REQUIRE(s);
  return s;
}

ks::voucher correction(uint64_t sequence, u128 amount) {
  ks::voucher v;
  v.journal_sequence = sequence;
  v.business_id = 7; // the case
  v.amount = amount;
  v.ledger = 840;
  v.debit_account = uint16_t(pay::gl_account::suspense);
  v.credit_account = uint16_t(pay::gl_account::customer_funds);
  std::memcpy(v.step, "case_to_account", 15);
  return v;
}

// The (debits, credits) of one GL account in ledger 840.
std::pair<u128, u128> total_of(const ks::voucher_store& s, pay::gl_account a) {
  std::vector<ks::gl_total> totals;
  REQUIRE(s.load_totals(totals).ok());
  for (const ks::gl_total& t : totals)
    if (t.account == uint16_t(a) && t.ledger == 840) return {t.debits, t.credits};
  return {0, 0};
}

} // namespace

TEST_CASE("corrections move the reconciliation cursor with the totals, once", "[store][accounting]") {
  temp_dir dir;
  auto s = open_vouchers(dir.path + "/accounting");
  CHECK(s->recon_cursor() == 0);
  ks::voucher_batch b;
  b.corrections = {correction(2, 100)};
  b.recon_cursor_before = 0, b.recon_cursor_after = 3; // resolutions 1 and 3 booked nothing
  REQUIRE(s->write(b).ok());
  CHECK(s->recon_cursor() == 3);
  CHECK(s->cursor() == 0);
  CHECK(s->vouchers() == 1);
  CHECK(total_of(*s, pay::gl_account::suspense) == std::pair<u128, u128>{100, 0});
  CHECK(total_of(*s, pay::gl_account::customer_funds) == std::pair<u128, u128>{0, 100});
  // the same range again: refused, nothing written
  ks::error err = s->write(b);
  CHECK(err.code == ks::errc::invalid_argument);
  CHECK(total_of(*s, pay::gl_account::suspense) == std::pair<u128, u128>{100, 0});
  // a journal range leaves the reconciliation cursor where it is
  REQUIRE(s->write({}, 0, 5).ok());
  s.reset();
  s = open_vouchers(dir.path + "/accounting");
  CHECK(s->recon_cursor() == 3);
  CHECK(s->cursor() == 5);
  std::vector<ks::voucher> out;
  REQUIRE(s->corrections_after(0, 10, out).ok());
  REQUIRE(out.size() == 1);
  CHECK(out[0].journal_sequence == 2);
  CHECK(std::string(out[0].step, 15) == "case_to_account");
  uint64_t cursor = 0, vouchers = 0, recon_cursor = 0;
  std::vector<ks::gl_total> totals;
  REQUIRE(s->load_totals(totals, &cursor, &vouchers, &recon_cursor).ok());
  CHECK(recon_cursor == 3);
}

TEST_CASE("an accounting store of format 1 is upgraded in place; its vouchers and totals are kept and no "
          "resolution is accounted for yet",
          "[store][accounting]") {
  temp_dir dir;
  const std::string path = dir.path + "/accounting";
  std::filesystem::create_directories(path);
  std::filesystem::copy_file(std::string(KASSA_STORE_TEST_DATA) + "/accounting_v1/data.mdb", path + "/data.mdb");
  {
    // `kassa gl` reading it before kassad upgraded it
    ks::error err;
    auto ro = ks::voucher_store::open_read_only(path, err);
    INFO(err.message);
    REQUIRE(ro);
    uint64_t cursor = 0, vouchers = 0, recon_cursor = 9;
    std::vector<ks::gl_total> totals;
    REQUIRE(ro->load_totals(totals, &cursor, &vouchers, &recon_cursor).ok());
    CHECK(cursor == 3);
    CHECK(vouchers == 2);
    CHECK(recon_cursor == 0);
    std::vector<ks::voucher> out;
    REQUIRE(ro->corrections_after(0, 10, out).ok());
    CHECK(out.empty());
  }
  auto s = open_vouchers(path);
  CHECK(s->cursor() == 3);
  CHECK(s->vouchers() == 2);
  CHECK(s->recon_cursor() == 0);
  CHECK(total_of(*s, pay::gl_account::provider_receivable) == std::pair<u128, u128>{1000, 0});
  CHECK(total_of(*s, pay::gl_account::customer_funds) == std::pair<u128, u128>{30, 1000});
  CHECK(total_of(*s, pay::gl_account::fee_income) == std::pair<u128, u128>{0, 30});
  ks::voucher_batch b;
  b.cursor_before = b.cursor_after = 3;
  b.corrections = {correction(1, 25)};
  b.recon_cursor_after = 1;
  REQUIRE(s->write(b).ok());
  s.reset();
  // opened again (format 2 now), read only too
  ks::error err;
  auto ro = ks::voucher_store::open_read_only(path, err);
  INFO(err.message);
  REQUIRE(ro);
  uint64_t cursor = 0, vouchers = 0, recon_cursor = 0;
  std::vector<ks::gl_total> totals;
  REQUIRE(ro->load_totals(totals, &cursor, &vouchers, &recon_cursor).ok());
  CHECK(cursor == 3);
  CHECK(vouchers == 3);
  CHECK(recon_cursor == 1);
  CHECK(total_of(*ro, pay::gl_account::customer_funds) == std::pair<u128, u128>{30, 1025});
}
