#pragma once
// Asks an actor from a test's thread and waits for the reply (ask, ask_all, ask_concurrently),
// or receives what an actor sends (inbox). A small stateful actor talks to the actor and hands each reply to
// the test's thread through a promise or a locked queue, rather than a scoped_actor: a
// scoped_actor's mailbox lives in libcaf_core, where ThreadSanitizer cannot see the message
// change threads (tests/tsan/caf_sync.cpp restores that edge for stateful actors only).
#include <caf/all.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace kassa::test {

struct asker_state {
  static inline const char* name = "kassa.test.asker";
};

// The reply, or nothing when `to` answers with an error or not within `timeout`.
template <class Reply, class Request>
std::optional<Reply> ask(caf::actor_system& sys, const caf::actor& to, Request request,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto answer = std::make_shared<std::promise<std::optional<Reply>>>();
  auto reply = answer->get_future();
  sys.spawn(
      [](caf::stateful_actor<asker_state>* self, caf::actor to, Request request, std::chrono::milliseconds timeout,
         std::shared_ptr<std::promise<std::optional<Reply>>> answer) -> caf::behavior {
        self->request(to, timeout, std::move(request))
            .then(
                [self, answer](Reply& r) {
                  answer->set_value(std::move(r));
                  self->quit();
                },
                [self, answer](caf::error&) {
                  answer->set_value(std::nullopt);
                  self->quit();
                });
        return {[](int) {}}; // alive until the reply
      },
      to, std::move(request), timeout, answer);
  return reply.get();
}

struct ask_all_state {
  static inline const char* name = "kassa.test.ask_all";
};

// Sends every request to `to` at once and waits for all replies; replies are in the order of
// `requests`, each empty when its request got an error or no answer within `timeout`.
template <class Reply, class Request>
std::vector<std::optional<Reply>> ask_all(caf::actor_system& sys, const caf::actor& to, std::vector<Request> requests,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  using replies = std::vector<std::optional<Reply>>;
  auto answer = std::make_shared<std::promise<replies>>();
  auto all = answer->get_future();
  if (requests.empty()) return {};
  sys.spawn(
      [](caf::stateful_actor<ask_all_state>* self, caf::actor to, std::vector<Request> requests,
         std::chrono::milliseconds timeout, std::shared_ptr<std::promise<replies>> answer) -> caf::behavior {
        auto out = std::make_shared<replies>(requests.size());
        auto open = std::make_shared<size_t>(requests.size());
        auto settle = [self, answer, out, open] {
          if (--*open > 0) return;
          answer->set_value(std::move(*out));
          self->quit();
        };
        for (size_t i = 0; i < requests.size(); ++i) {
          self->request(to, timeout, std::move(requests[i]))
              .then(
                  [out, settle, i](Reply& r) {
                    (*out)[i] = std::move(r);
                    settle();
                  },
                  [settle](caf::error&) { settle(); });
        }
        return {[](int) {}}; // alive until the last reply
      },
      to, std::move(requests), timeout, answer);
  return all.get();
}

// Sends each request from a client of its own (a thread of its own, asking through an actor
// of its own), all released at once, as clients on different connections do: the order in
// which the requests reach `to` is up to the threads and the scheduler. Replies are in the
// order of `requests`, each empty when its request got an error or no answer within `timeout`.
template <class Reply, class Request>
std::vector<std::optional<Reply>> ask_concurrently(caf::actor_system& sys, const caf::actor& to,
                                                   std::vector<Request> requests,
                                                   std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  std::vector<std::optional<Reply>> out(requests.size());
  std::mutex mutex;
  std::condition_variable changed;
  size_t ready = 0;
  bool go = false;
  std::vector<std::thread> clients;
  clients.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    clients.emplace_back([&, i] {
      {
        std::unique_lock<std::mutex> lock(mutex);
        ++ready;
        changed.notify_all();
        changed.wait(lock, [&] { return go; });
      }
      out[i] = ask<Reply>(sys, to, std::move(requests[i]), timeout);
    });
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return ready == requests.size(); });
    go = true;
  }
  changed.notify_all();
  for (std::thread& c : clients) c.join();
  return out;
}

struct in_flight_state {
  static inline const char* name = "kassa.test.in_flight";
};

// Requests sent at once whose replies are collected as they come, until `stop()`: what a
// client holds when its server dies under it (test the requests left unanswered).
template <class Reply>
class in_flight {
public:
  template <class Request>
  in_flight(caf::actor_system& sys, const caf::actor& to, std::vector<Request> requests)
      : replies_(std::make_shared<replies>()) {
    replies_->got.resize(requests.size());
    actor_ = sys.spawn(
        [](caf::stateful_actor<in_flight_state>* self, caf::actor to, std::vector<Request> requests,
           std::shared_ptr<replies> out) -> caf::behavior {
          for (size_t i = 0; i < requests.size(); ++i) {
            self->request(to, caf::infinite, std::move(requests[i]))
                .then(
                    [out, i](Reply& r) {
                      std::lock_guard<std::mutex> lock(out->mutex);
                      out->got[i] = std::move(r);
                    },
                    [](caf::error&) {});
          }
          return {[](int) {}};
        },
        to, std::move(requests), replies_);
  }
  ~in_flight() { stop(); }
  in_flight(const in_flight&) = delete;
  in_flight& operator=(const in_flight&) = delete;

  // Stops listening; returns each request's reply, empty for those not answered by then.
  std::vector<std::optional<Reply>> stop() {
    if (actor_) caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
    actor_ = caf::actor{};
    std::lock_guard<std::mutex> lock(replies_->mutex);
    return replies_->got;
  }

private:
  struct replies {
    std::mutex mutex;
    std::vector<std::optional<Reply>> got;
  };
  std::shared_ptr<replies> replies_;
  caf::actor actor_;
};

struct inbox_state {
  static inline const char* name = "kassa.test.inbox";
};

// An actor handle a test can give out (a subscriber, a reply-to) and read on its own thread:
// each message of type T sent to handle() is queued until next() takes it.
template <class T>
class inbox {
public:
  explicit inbox(caf::actor_system& sys) : queue_(std::make_shared<queue>()) {
    actor_ = sys.spawn(
        [](caf::stateful_actor<inbox_state>*, std::shared_ptr<queue> q) -> caf::behavior {
          return {[q](T& x) {
            std::lock_guard<std::mutex> lock(q->mutex);
            q->items.push_back(std::move(x));
            q->ready.notify_one();
          }};
        },
        queue_);
  }
  ~inbox() { caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown); }
  inbox(const inbox&) = delete;
  inbox& operator=(const inbox&) = delete;

  const caf::actor& handle() const { return actor_; }

  // The oldest message not yet taken, or nothing when none arrives within `timeout`.
  std::optional<T> next(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(queue_->mutex);
    if (!queue_->ready.wait_for(lock, timeout, [this] { return !queue_->items.empty(); })) return std::nullopt;
    T x = std::move(queue_->items.front());
    queue_->items.pop_front();
    return x;
  }

private:
  struct queue {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<T> items;
  };
  std::shared_ptr<queue> queue_;
  caf::actor actor_;
};

} // namespace kassa::test
