#include "actors/payments_writer.hpp"

#include <chrono>
#include <utility>
#include <vector>

namespace kassa::actors {

namespace {

using ledger::store::payments_batch;
using ledger::store::payments_store;

// The group handed to the committer and what the committer answers.
struct payments_group {
  payments_batch batch;
};
struct payments_group_done {
  ledger::store::error error;
  uint64_t journal_last = 0;
};

} // namespace
} // namespace kassa::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::payments_group)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::payments_group_done)

namespace kassa::actors {

namespace {

caf::behavior committer(caf::event_based_actor*, std::shared_ptr<payments_store> store) {
  return {
      [store](payments_group& g) -> payments_group_done {
        payments_group_done done;
        done.error = store->write(g.batch);
        done.journal_last = store->journal_last();
        return done;
      },
  };
}

constexpr auto failure_log_interval = std::chrono::seconds(10);

struct writer_state {
  caf::actor committer;
  size_t pending_max = 0;
  std::function<void(const std::string&)> log_error;
  std::chrono::steady_clock::time_point failure_logged_at{}; // zero: none logged yet
  bool busy = false;
  payments_batch next;                         // merged writes waiting for the committer
  std::vector<caf::response_promise> next_rps; // their senders
};

using writer_actor = caf::stateful_actor<writer_state>;

template <class T> void append(std::vector<T>& to, std::vector<T>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

void log_failure(writer_actor* self, const ledger::store::error& err) {
  auto& st = self->state;
  const auto now = std::chrono::steady_clock::now();
  if (!st.log_error || (st.failure_logged_at != std::chrono::steady_clock::time_point{} &&
                        now - st.failure_logged_at < failure_log_interval))
    return;
  st.failure_logged_at = now;
  st.log_error(err.message);
}

void start_commit(writer_actor* self) {
  auto& st = self->state;
  if (st.busy || st.next_rps.empty()) return;
  st.busy = true;
  auto rps = std::move(st.next_rps);
  st.next_rps.clear();
  payments_group g{std::move(st.next)};
  st.next = payments_batch{};
  self->request(st.committer, caf::infinite, std::move(g))
      .then(
          [self, rps](payments_group_done& done) mutable {
            if (!done.error.ok()) log_failure(self, done.error);
            for (auto& rp : rps) rp.deliver(payments_written{done.error, done.journal_last});
            self->state.busy = false;
            start_commit(self);
          },
          [self, rps](caf::error& e) mutable {
            ledger::store::error err{ledger::store::errc::io, "payments store writer failed: " + to_string(e)};
            log_failure(self, err);
            for (auto& rp : rps) rp.deliver(payments_written{err, 0});
            self->state.busy = false;
            start_commit(self);
          });
}

caf::behavior writer(writer_actor* self, std::shared_ptr<payments_store> store,
                     std::function<void(const std::string&)> log_error, size_t pending_max) {
  self->state.committer = self->system().spawn<caf::detached>(committer, std::move(store));
  self->state.pending_max = pending_max;
  self->state.log_error = std::move(log_error);
  self->link_to(self->state.committer);
  return {
      [self](payments_write& w) -> caf::result<payments_written> {
        auto& st = self->state;
        if (st.next_rps.size() >= st.pending_max)
          return payments_written{{ledger::store::errc::io, "payments store busy: too many writes waiting"}, 0};
        append(st.next.rows, w.batch.rows);
        append(st.next.keys, w.batch.keys);
        append(st.next.journal, w.batch.journal);
        append(st.next.meta, w.batch.meta);
        auto rp = self->make_response_promise<payments_written>();
        st.next_rps.push_back(rp);
        start_commit(self);
        return rp;
      },
  };
}

} // namespace

caf::actor spawn_payments_writer(caf::actor_system& sys, std::shared_ptr<payments_store> store,
                                 std::function<void(const std::string&)> log_error, size_t pending_max) {
  return sys.spawn(writer, std::move(store), std::move(log_error), pending_max);
}

} // namespace kassa::actors
