// Every result code of create_accounts and create_transfers, each produced by the smallest
// scenario that should yield it. The last test checks that none is left out.
#include <catch2/catch.hpp>

#include <functional>
#include <map>

#include "ledger/system_ids.hpp"
#include "tests/ledger/ledger_fixture.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;

namespace {

// Accounts: 1, 2 on ledger 1; 3 on ledger 2; 4 debits_must_not_exceed_credits;
// 5 credits_must_not_exceed_debits; 6 history; all ledger 1 unless said.
void seed_accounts(state_machine& sm) {
  std::vector<account> as{make_account(1), make_account(2), make_account(3, 2),
                          make_account(4, 1, account_debits_must_not_exceed_credits),
                          make_account(5, 1, account_credits_must_not_exceed_debits),
                          make_account(6, 1, account_history)};
  auto results = sm.create_accounts(as.data(), as.size(), 1000);
  for (auto r : results) REQUIRE(r == account_result::ok);
}

using account_case = std::function<account_result(state_machine&)>;
using transfer_case = std::function<transfer_result(state_machine&)>;

std::map<account_result, account_case> account_cases() {
  std::map<account_result, account_case> c;
  c[account_result::ok] = [](state_machine& sm) { return create_one(sm, make_account(100)); };
  c[account_result::linked_event_failed] = [](state_machine& sm) {
    std::vector<account> as{make_account(100, 1, account_linked), make_account(0)};
    auto r = sm.create_accounts(as.data(), 2, 1000);
    CHECK(r[1] == account_result::id_must_not_be_zero);
    CHECK(sm.account_find(100) == nullptr); // the chain rolled back
    return r[0];
  };
  c[account_result::linked_event_chain_open] = [](state_machine& sm) {
    return create_one(sm, make_account(100, 1, account_linked));
  };
  c[account_result::timestamp_must_be_zero] = [](state_machine& sm) {
    auto a = make_account(100); a.timestamp = 1; return create_one(sm, a);
  };
  c[account_result::reserved_field] = [](state_machine& sm) {
    auto a = make_account(100); a.reserved = 1; return create_one(sm, a);
  };
  c[account_result::reserved_flag] = [](state_machine& sm) {
    return create_one(sm, make_account(100, 1, 1u << 15));
  };
  c[account_result::id_must_not_be_zero] = [](state_machine& sm) { return create_one(sm, make_account(0)); };
  c[account_result::id_must_not_be_int_max] = [](state_machine& sm) {
    return create_one(sm, make_account(u128_max));
  };
  c[account_result::id_must_not_be_reserved] = [](state_machine& sm) {
    return create_one(sm, make_account(system_ids::clearing(0, 1, 1)));
  };
  c[account_result::exists_with_different_flags] = [](state_machine& sm) {
    return create_one(sm, make_account(1, 1, account_history));
  };
  c[account_result::exists_with_different_user_data_128] = [](state_machine& sm) {
    auto a = make_account(1); a.user_data_128 = 7; return create_one(sm, a);
  };
  c[account_result::exists_with_different_user_data_64] = [](state_machine& sm) {
    auto a = make_account(1); a.user_data_64 = 7; return create_one(sm, a);
  };
  c[account_result::exists_with_different_user_data_32] = [](state_machine& sm) {
    auto a = make_account(1); a.user_data_32 = 7; return create_one(sm, a);
  };
  c[account_result::exists_with_different_ledger] = [](state_machine& sm) {
    return create_one(sm, make_account(1, 9));
  };
  c[account_result::exists_with_different_code] = [](state_machine& sm) {
    return create_one(sm, make_account(1, 1, 0, 99));
  };
  c[account_result::exists] = [](state_machine& sm) { return create_one(sm, make_account(1)); };
  c[account_result::flags_are_mutually_exclusive] = [](state_machine& sm) {
    return create_one(sm, make_account(100, 1, account_debits_must_not_exceed_credits |
                                                     account_credits_must_not_exceed_debits));
  };
  c[account_result::debits_pending_must_be_zero] = [](state_machine& sm) {
    auto a = make_account(100); a.debits_pending = 1; return create_one(sm, a);
  };
  c[account_result::debits_posted_must_be_zero] = [](state_machine& sm) {
    auto a = make_account(100); a.debits_posted = 1; return create_one(sm, a);
  };
  c[account_result::credits_pending_must_be_zero] = [](state_machine& sm) {
    auto a = make_account(100); a.credits_pending = 1; return create_one(sm, a);
  };
  c[account_result::credits_posted_must_be_zero] = [](state_machine& sm) {
    auto a = make_account(100); a.credits_posted = 1; return create_one(sm, a);
  };
  c[account_result::ledger_must_not_be_zero] = [](state_machine& sm) {
    return create_one(sm, make_account(100, 0));
  };
  c[account_result::code_must_not_be_zero] = [](state_machine& sm) {
    return create_one(sm, make_account(100, 1, 0, 0));
  };
  return c;
}

transfer pending_1_to_2(u128 id, u128 amount = 50, uint32_t timeout = 0) {
  auto t = make_transfer(id, 1, 2, amount, transfer_pending);
  t.timeout = timeout;
  return t;
}

std::map<transfer_result, transfer_case> transfer_cases() {
  using R = transfer_result;
  std::map<R, transfer_case> c;
  c[R::ok] = [](state_machine& sm) { return transfer_one(sm, make_transfer(10, 1, 2, 5)); };
  c[R::linked_event_failed] = [](state_machine& sm) {
    std::vector<transfer> ts{make_transfer(10, 1, 2, 5, transfer_linked), make_transfer(11, 1, 1, 5)};
    auto r = sm.create_transfers(ts.data(), 2, 1000);
    CHECK(r[1] == R::accounts_must_be_different);
    CHECK(sm.transfer_find(10) == nullptr);
    CHECK(sm.account_find(1)->debits_posted == 0);
    return r[0];
  };
  c[R::linked_event_chain_open] = [](state_machine& sm) {
    return transfer_one(sm, make_transfer(10, 1, 2, 5, transfer_linked));
  };
  c[R::timestamp_must_be_zero] = [](state_machine& sm) {
    auto t = make_transfer(10, 1, 2, 5); t.timestamp = 3; return transfer_one(sm, t);
  };
  c[R::reserved_flag] = [](state_machine& sm) { return transfer_one(sm, make_transfer(10, 1, 2, 5, 1u << 12)); };
  c[R::id_must_not_be_zero] = [](state_machine& sm) { return transfer_one(sm, make_transfer(0, 1, 2, 5)); };
  c[R::id_must_not_be_int_max] = [](state_machine& sm) {
    return transfer_one(sm, make_transfer(u128_max, 1, 2, 5));
  };
  // The exists_* cases first store transfer 10 = 1 -> 2, amount 5, then repeat it changed.
  auto repeat = [](std::function<void(transfer&)> change) {
    return [change](state_machine& sm) {
      REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 5)) == R::ok);
      auto t = make_transfer(10, 1, 2, 5);
      change(t);
      return transfer_one(sm, t);
    };
  };
  c[R::exists_with_different_flags] = repeat([](transfer& t) { t.flags = transfer_pending; });
  c[R::exists_with_different_pending_id] = repeat([](transfer& t) { t.pending_id = 3; });
  c[R::exists_with_different_timeout] = repeat([](transfer& t) { t.timeout = 3; });
  c[R::exists_with_different_debit_account_id] = repeat([](transfer& t) { t.debit_account_id = 6; });
  c[R::exists_with_different_credit_account_id] = repeat([](transfer& t) { t.credit_account_id = 6; });
  c[R::exists_with_different_amount] = repeat([](transfer& t) { t.amount = 6; });
  c[R::exists_with_different_user_data_128] = repeat([](transfer& t) { t.user_data_128 = 6; });
  c[R::exists_with_different_user_data_64] = repeat([](transfer& t) { t.user_data_64 = 6; });
  c[R::exists_with_different_user_data_32] = repeat([](transfer& t) { t.user_data_32 = 6; });
  c[R::exists_with_different_ledger] = repeat([](transfer& t) { t.ledger = 2; });
  c[R::exists_with_different_code] = repeat([](transfer& t) { t.code = 2; });
  c[R::exists] = repeat([](transfer&) {});
  c[R::flags_are_mutually_exclusive] = [](state_machine& sm) {
    return transfer_one(sm, make_transfer(10, 1, 2, 5, transfer_pending | transfer_void_pending));
  };
  c[R::debit_account_id_must_not_be_zero] = [](state_machine& sm) { return transfer_one(sm, make_transfer(10, 0, 2, 5)); };
  c[R::debit_account_id_must_not_be_int_max] = [](state_machine& sm) {
    return transfer_one(sm, make_transfer(10, u128_max, 2, 5));
  };
  c[R::credit_account_id_must_not_be_zero] = [](state_machine& sm) { return transfer_one(sm, make_transfer(10, 1, 0, 5)); };
  c[R::credit_account_id_must_not_be_int_max] = [](state_machine& sm) {
    return transfer_one(sm, make_transfer(10, 1, u128_max, 5));
  };
  c[R::accounts_must_be_different] = [](state_machine& sm) { return transfer_one(sm, make_transfer(10, 1, 1, 5)); };
  c[R::pending_id_must_be_zero] = [](state_machine& sm) {
    auto t = make_transfer(10, 1, 2, 5); t.pending_id = 9; return transfer_one(sm, t);
  };
  c[R::pending_id_must_not_be_zero] = [](state_machine& sm) {
    return transfer_one(sm, make_resolve(10, 0, transfer_post_pending));
  };
  c[R::pending_id_must_not_be_int_max] = [](state_machine& sm) {
    return transfer_one(sm, make_resolve(10, u128_max, transfer_post_pending));
  };
  c[R::pending_id_must_be_different] = [](state_machine& sm) {
    return transfer_one(sm, make_resolve(10, 10, transfer_void_pending));
  };
  c[R::timeout_reserved_for_pending_transfer] = [](state_machine& sm) {
    auto t = make_transfer(10, 1, 2, 5); t.timeout = 1; return transfer_one(sm, t);
  };
  c[R::closing_transfer_must_be_pending] = [](state_machine& sm) {
    return transfer_one(sm, make_transfer(10, 1, 2, 5, transfer_closing_debit));
  };
  c[R::amount_must_not_be_zero] = [](state_machine& sm) { return transfer_one(sm, make_transfer(10, 1, 2, 0)); };
  c[R::ledger_must_not_be_zero] = [](state_machine& sm) { return transfer_one(sm, make_transfer(10, 1, 2, 5, 0, 0)); };
  c[R::code_must_not_be_zero] = [](state_machine& sm) {
    auto t = make_transfer(10, 1, 2, 5); t.code = 0; return transfer_one(sm, t);
  };
  c[R::debit_account_not_found] = [](state_machine& sm) { return transfer_one(sm, make_transfer(10, 77, 2, 5)); };
  c[R::credit_account_not_found] = [](state_machine& sm) { return transfer_one(sm, make_transfer(10, 1, 77, 5)); };
  c[R::accounts_must_have_the_same_ledger] = [](state_machine& sm) {
    return transfer_one(sm, make_transfer(10, 1, 3, 5));
  };
  c[R::transfer_must_have_the_same_ledger_as_accounts] = [](state_machine& sm) {
    return transfer_one(sm, make_transfer(10, 1, 2, 5, 0, 2));
  };
  c[R::pending_transfer_not_found] = [](state_machine& sm) {
    return transfer_one(sm, make_resolve(10, 9, transfer_post_pending));
  };
  c[R::pending_transfer_not_pending] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, make_transfer(9, 1, 2, 5)) == R::ok);
    return transfer_one(sm, make_resolve(10, 9, transfer_post_pending));
  };
  auto with_pending = [](std::function<void(transfer&)> change) {
    return [change](state_machine& sm) {
      REQUIRE(transfer_one(sm, pending_1_to_2(9)) == R::ok);
      auto t = make_resolve(10, 9, transfer_post_pending);
      change(t);
      return transfer_one(sm, t);
    };
  };
  c[R::pending_transfer_has_different_debit_account_id] = with_pending([](transfer& t) { t.debit_account_id = 6; });
  c[R::pending_transfer_has_different_credit_account_id] = with_pending([](transfer& t) { t.credit_account_id = 6; });
  c[R::pending_transfer_has_different_ledger] = with_pending([](transfer& t) { t.ledger = 2; });
  c[R::pending_transfer_has_different_code] = with_pending([](transfer& t) { t.code = 2; });
  c[R::exceeds_pending_transfer_amount] = with_pending([](transfer& t) { t.amount = 51; });
  c[R::pending_transfer_has_different_amount] = with_pending([](transfer& t) {
    t.flags = transfer_void_pending;
    t.amount = 49;
  });
  c[R::pending_transfer_already_posted] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, pending_1_to_2(9)) == R::ok);
    REQUIRE(transfer_one(sm, make_resolve(10, 9, transfer_post_pending)) == R::ok);
    return transfer_one(sm, make_resolve(11, 9, transfer_void_pending));
  };
  c[R::pending_transfer_already_voided] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, pending_1_to_2(9)) == R::ok);
    REQUIRE(transfer_one(sm, make_resolve(10, 9, transfer_void_pending)) == R::ok);
    return transfer_one(sm, make_resolve(11, 9, transfer_post_pending));
  };
  c[R::pending_transfer_expired] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, pending_1_to_2(9, 50, 1), 1000) == R::ok);
    return transfer_one(sm, make_resolve(10, 9, transfer_post_pending), 1000 + 2 * ns_per_s);
  };
  c[R::debit_account_already_closed] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, make_transfer(9, 1, 2, 1, transfer_pending | transfer_closing_debit)) == R::ok);
    return transfer_one(sm, make_transfer(10, 1, 2, 5));
  };
  c[R::credit_account_already_closed] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, make_transfer(9, 6, 2, 1, transfer_pending | transfer_closing_credit)) == R::ok);
    return transfer_one(sm, make_transfer(10, 1, 2, 5));
  };
  c[R::overflows_debits_pending] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, pending_1_to_2(9, u128_max)) == R::ok);
    return transfer_one(sm, make_transfer(10, 1, 6, 1, transfer_pending));
  };
  c[R::overflows_credits_pending] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, pending_1_to_2(9, u128_max)) == R::ok);
    return transfer_one(sm, make_transfer(10, 6, 2, 1, transfer_pending));
  };
  c[R::overflows_debits_posted] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, make_transfer(9, 1, 2, u128_max)) == R::ok);
    return transfer_one(sm, make_transfer(10, 1, 6, 1));
  };
  c[R::overflows_credits_posted] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, make_transfer(9, 1, 2, u128_max)) == R::ok);
    return transfer_one(sm, make_transfer(10, 6, 2, 1));
  };
  c[R::overflows_debits] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, pending_1_to_2(9, u128_max)) == R::ok);
    return transfer_one(sm, make_transfer(10, 1, 6, 1));
  };
  c[R::overflows_credits] = [](state_machine& sm) {
    REQUIRE(transfer_one(sm, pending_1_to_2(9, u128_max)) == R::ok);
    return transfer_one(sm, make_transfer(10, 6, 2, 1));
  };
  c[R::overflows_timeout] = [](state_machine& sm) {
    return transfer_one(sm, pending_1_to_2(10, 5, UINT32_MAX), UINT64_MAX - ns_per_s);
  };
  c[R::exceeds_credits] = [](state_machine& sm) { return transfer_one(sm, make_transfer(10, 4, 2, 1)); };
  c[R::exceeds_debits] = [](state_machine& sm) { return transfer_one(sm, make_transfer(10, 1, 5, 1)); };
  c[R::id_must_not_be_reserved] = [](state_machine& sm) {
    return transfer_one(sm, make_transfer(system_ids::transfer(1), 1, 2, 1));
  };
  c[R::accounts_must_not_be_reserved] = [](state_machine& sm) {
    account clearing = make_account(system_ids::clearing(0, 1, 1));
    const uint8_t system = 1;
    REQUIRE(sm.create_accounts(&clearing, 1, 1000, &system)[0] == account_result::ok);
    return transfer_one(sm, make_transfer(10, 1, clearing.id, 1));
  };
  return c;
}

} // namespace

TEST_CASE("every account result code is produced by its scenario", "[ledger]") {
  for (auto& [expected, scenario] : account_cases()) {
    DYNAMIC_SECTION(name(expected)) {
      state_machine sm;
      seed_accounts(sm);
      CHECK(name(scenario(sm)) == name(expected));
    }
  }
}

TEST_CASE("every transfer result code is produced by its scenario", "[ledger]") {
  for (auto& [expected, scenario] : transfer_cases()) {
    DYNAMIC_SECTION(name(expected)) {
      state_machine sm;
      seed_accounts(sm);
      CHECK(name(scenario(sm)) == name(expected));
    }
  }
}

// Codes only the directory answers (tests/actors/directory_test.cpp has their scenarios):
// they concern transfers across shards, which one state machine never sees.
TEST_CASE("no result code is left without a scenario", "[ledger]") {
  CHECK(account_cases().size() + 1 == account_result_count); // not_supported_across_shards
  CHECK(transfer_cases().size() + 2 == transfer_result_count); // id_already_failed, not_supported_across_shards
  CHECK(account_cases().count(account_result::not_supported_across_shards) == 0);
  CHECK(transfer_cases().count(transfer_result::id_already_failed) == 0);
  CHECK(transfer_cases().count(transfer_result::not_supported_across_shards) == 0);
}

TEST_CASE("kassa's own events may use the reserved ids", "[ledger]") {
  state_machine sm;
  seed_accounts(sm);
  const uint8_t system[2] = {1, 1};
  account clearing = make_account(system_ids::clearing(0, 1, 1));
  REQUIRE(sm.create_accounts(&clearing, 1, 1000, system)[0] == account_result::ok);
  transfer t = make_transfer(system_ids::transfer(7), 1, clearing.id, 5);
  CHECK(sm.create_transfers(&t, 1, 2000, system)[0] == transfer_result::ok);
  CHECK(sm.account_find(clearing.id)->credits_posted == 5);
  // The same event from a client is refused, and changes nothing.
  transfer again = make_transfer(system_ids::transfer(8), 1, clearing.id, 5);
  CHECK(transfer_one(sm, again) == transfer_result::id_must_not_be_reserved);
  CHECK(sm.account_find(clearing.id)->credits_posted == 5);
}

TEST_CASE("the reserved id space is one corner, apart from int max", "[ledger]") {
  CHECK(system_ids::reserved(system_ids::clearing(3, 4, 9)));
  CHECK(system_ids::clearing_from(system_ids::clearing(3, 4, 9)) == 3);
  CHECK(system_ids::clearing_to(system_ids::clearing(3, 4, 9)) == 4);
  CHECK(system_ids::clearing_ledger(system_ids::clearing(3, 4, 9)) == 9);
  CHECK(system_ids::kind_of(system_ids::sub(42, 3)) == system_ids::kind::sub);
  CHECK(system_ids::kind_of(system_ids::transfer(1)) == system_ids::kind::transfer);
  CHECK_FALSE(system_ids::reserved(u128_max));
  CHECK_FALSE(system_ids::reserved(1));
  CHECK_FALSE(system_ids::reserved(make_u128(0xFFFF'FFFF'FFFF'FEFFull, 0)));
  CHECK(system_ids::reserved(make_u128(0xFFFF'FFFF'FFFF'FF00ull, 0)));
}

TEST_CASE("result code names round-trip and are unique", "[ledger]") {
  for (uint32_t i = 0; i < transfer_result_count; ++i) {
    transfer_result r{};
    REQUIRE(parse_transfer_result(name(static_cast<transfer_result>(i)), r));
    CHECK(static_cast<uint32_t>(r) == i);
  }
  for (uint32_t i = 0; i < account_result_count; ++i) {
    account_result r{};
    REQUIRE(parse_account_result(name(static_cast<account_result>(i)), r));
    CHECK(static_cast<uint32_t>(r) == i);
  }
}
