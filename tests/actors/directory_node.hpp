#pragma once
// One life of a kassad's ledger in a test: real shards over LMDB stores in a temp dir
// (durability none), the saga log and the directory; and small helpers to read replies.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <memory>
#include <string>
#include <vector>

#include "actors/directory.hpp"
#include "actors/shard.hpp"
#include "actors/writer.hpp"
#include "tests/ask.hpp"
#include "tests/store/store_fixture.hpp"

namespace kassa::test {

using namespace kassa::actors;
namespace ks = kassa::ledger::store;

inline std::string shard_dir(const std::string& root, uint32_t i) { return root + "/shard-" + std::to_string(i); }

// One life of a kassad: shards over the stores below `root`, the saga log, the directory.
// Destroying it stops every actor and closes the stores; a new node on the same root is a
// restart.
struct node {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::vector<std::shared_ptr<ks::store>> stores;
  std::vector<shard_actor> shards;
  std::vector<writer_actor> writers;
  std::shared_ptr<ks::saga_log> log;
  caf::actor directory;

  // `store_map_bytes`: each shard's LMDB map (sparse: disk is used as data grows).
  node(const std::string& root, uint32_t n, directory_options extra = {}, bool with_directory = true,
       uint64_t saga_log_bytes = 16u << 20, uint64_t store_map_bytes = 256ull << 20) {
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    for (uint32_t i = 0; i < n; ++i) {
      ks::error err;
      ks::options so_store = store_options(shard_dir(root, i));
      so_store.map_size_bytes = store_map_bytes;
      auto st = std::shared_ptr<ks::store>(ks::store::open(so_store, err));
      REQUIRE(err.ok());
      shard_options so;
      so.shard = i;
      so.shards = n;
      so.store = st;
      so.writer = spawn_writer(*sys, st);
      auto shard = spawn_shard(*sys, so, err);
      REQUIRE(err.ok());
      stores.push_back(st);
      writers.push_back(so.writer);
      shards.push_back(shard);
    }
    ks::error err;
    log = std::shared_ptr<ks::saga_log>(ks::saga_log::open(root + "/sagas", ks::durability::none, saga_log_bytes, err));
    REQUIRE(err.ok());
    if (with_directory) start(std::move(extra));
  }
  void start(directory_options o) {
    o.shards = shards;
    o.saga_log = log;
    std::string error;
    directory = caf::actor_cast<caf::actor>(spawn_directory(*sys, std::move(o), error));
    REQUIRE(directory);
  }
  ~node() {
    for (auto& a : {directory}) if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& a : shards) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& a : writers) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    // A detached actor's thread ends once its last handle is gone: drop ours first.
    directory = caf::actor{};
    shards.clear();
    writers.clear();
    sys.reset(); // waits for every actor
  }

  // `to`: the directory, or a shard (a typed handle, asked as any client asks).
  template <class Reply, class Handle, class Request>
  Reply ask(const Handle& to, Request req) {
    if (auto r = kassa::test::ask<Reply>(*sys, caf::actor_cast<caf::actor>(to), std::move(req))) return std::move(*r);
    Reply out;
    out.status = outcome::store_unavailable;
    return out;
  }
  create_reply accounts(std::vector<account> as) {
    return ask<create_reply>(directory, create_accounts_request{{}, std::move(as), {}});
  }
  create_reply transfers(std::vector<transfer> ts) {
    return ask<create_reply>(directory, create_transfers_request{{}, std::move(ts), {}});
  }
  account lookup(u128 id, const shard_actor* at = nullptr) {
    auto r = at ? ask<accounts_reply>(*at, lookup_accounts_request{{}, {id}})
                : ask<accounts_reply>(directory, lookup_accounts_request{{}, {id}});
    REQUIRE(r.status == outcome::ok);
    REQUIRE(r.accounts.size() == 1);
    return r.accounts[0];
  }
  std::vector<transfer> lookup_transfers(std::vector<u128> ids) {
    auto r = ask<transfers_reply>(directory, lookup_transfers_request{{}, std::move(ids)});
    REQUIRE(r.status == outcome::ok);
    return r.transfers;
  }
};

// An account id that lives in shard `shard` of `n`, the k-th such.
inline u128 id_in(uint32_t shard, uint32_t n, uint32_t k = 0) {
  for (u128 id = 1;; ++id) {
    if (shard_of(id, n) == shard && k-- == 0) return id;
  }
}

inline uint32_t code_of(const create_reply& r, uint32_t index) {
  for (const auto& f : r.failures) if (f.index == index) return f.code;
  return 0;
}
inline std::string tname(const create_reply& r, uint32_t index) {
  return std::string(name(static_cast<transfer_result>(code_of(r, index))));
}

} // namespace kassa::test
