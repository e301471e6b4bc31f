#pragma once
// A tiny scripted kassa server on 127.0.0.1 for the client tests, built on the wire codec:
//   create_transfers: amount 0 -> amount_must_not_be_zero; user_data_64 0xB05 -> busy once
//                     per transfer id; 0xB06 -> busy always
//   create_accounts:  id 0 -> id_must_not_be_zero
//   lookup_accounts:  ids >= 1'000'000 are missing; a request naming 777 first is held and
//                     answered after the reply to the next lookup_accounts (out of order)
//   lookup_transfers: 666 -> never answered; 555 -> the server closes the connection
//   get_account_transfers: min(limit, 3) transfers stamped timestamp_min (or 1) onwards
//   get_account_balances:  account 13 -> store_unavailable; others one balance
//   submit_payments:  one reply per command: amount 0 -> amount_must_not_be_zero, else
//                     in_progress / processing with the command's order and amount
//   lookup_orders:    ids >= 1'000'000 are missing; the others are created orders
#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "runtime/wire/wire.hpp"

namespace kassa::test {

class fake_server {
public:
  explicit fake_server(wire::hello_reply hello = default_hello(), bool silent = false)
      : hello_(hello), silent_(silent),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~fake_server() {
    boost::asio::post(io_, [this] { io_.stop(); });
    thread_.join();
  }

  static wire::hello_reply default_hello() {
    wire::hello_reply h;
    h.frame_bytes_max = 128 * 4 + 256;
    h.batch_events_max = 4;
    h.requests_inflight_max = 2;
    return h;
  }

  uint16_t port = 0;
  std::atomic<int> busy_sent{0};
  std::atomic<size_t> outstanding_max{0};

  std::vector<uint32_t> create_frame_events() {
    std::lock_guard<std::mutex> g(mutex_);
    return create_frame_events_;
  }
  // Commands or ids per submit_payments / lookup_orders frame, in arrival order.
  std::vector<uint32_t> payment_frame_events() {
    std::lock_guard<std::mutex> g(mutex_);
    return payment_frame_events_;
  }
  std::vector<wire::context> contexts() {
    std::lock_guard<std::mutex> g(mutex_);
    return contexts_;
  }

private:
  struct session {
    explicit session(boost::asio::io_context& io) : socket(io) {}
    boost::asio::ip::tcp::socket socket;
    std::vector<uint8_t> inbox;
    size_t outstanding = 0;
    std::vector<uint8_t> held; // an out-of-order reply waiting for the next lookup
    bool closed = false;
  };

  void accept() {
    auto s = std::make_shared<session>(io_);
    acceptor_.async_accept(s->socket, [this, s](const boost::system::error_code& ec) {
      if (ec) return;
      read(s);
      accept();
    });
  }

  void read(std::shared_ptr<session> s) {
    auto buf = std::make_shared<std::vector<uint8_t>>(65536);
    s->socket.async_read_some(boost::asio::buffer(*buf), [this, s, buf](
                                                             const boost::system::error_code& ec,
                                                             size_t n) {
      if (ec || s->closed) return;
      if (silent_) {
        read(s);
        return;
      }
      s->inbox.insert(s->inbox.end(), buf->begin(), buf->begin() + long(n));
      const wire::limits l{hello_.frame_bytes_max, hello_.batch_events_max, false};
      size_t at = 0;
      for (;;) {
        const wire::decoded d = wire::decode(s->inbox.data() + at, s->inbox.size() - at, l);
        if (d.outcome == wire::decode_outcome::need_more) break;
        if (d.outcome == wire::decode_outcome::error_close) {
          std::vector<uint8_t> out;
          wire::encode_error(out, wire::header{}, d.error);
          send(s, std::move(out), false);
          s->closed = true;
          return;
        }
        ++s->outstanding;
        outstanding_max = std::max<size_t>(outstanding_max, s->outstanding);
        if (d.outcome == wire::decode_outcome::error_keep_open) {
          std::vector<uint8_t> out;
          wire::encode_error(out, d.h, d.error);
          send(s, std::move(out));
        } else {
          handle(s, d);
        }
        at += d.consumed;
        if (s->closed) return;
      }
      s->inbox.erase(s->inbox.begin(), s->inbox.begin() + long(at));
      read(s);
    });
  }

  // Writes one reply; `answers` counts it against the session's outstanding requests.
  void send(std::shared_ptr<session> s, std::vector<uint8_t> bytes, bool answers = true) {
    if (answers) --s->outstanding;
    auto buf = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
    boost::asio::async_write(s->socket, boost::asio::buffer(*buf),
                             [s, buf](const boost::system::error_code&, size_t) {});
  }

  template <class T>
  std::vector<uint8_t> reply(const wire::header& request, const std::vector<T>& records) {
    wire::header h = request;
    h.reply = true;
    h.event_count = uint32_t(records.size());
    std::vector<uint8_t> out;
    wire::encode(out, h, records.data(), records.size() * sizeof(T));
    return out;
  }

  std::vector<uint8_t> error(const wire::header& request, wire::status st) {
    std::vector<uint8_t> out;
    wire::encode_error(out, request, st);
    return out;
  }

  void handle(std::shared_ptr<session> s, const wire::decoded& d) {
    {
      std::lock_guard<std::mutex> g(mutex_);
      contexts_.push_back(d.h.ctx);
    }
    switch (d.h.op) {
    case wire::operation::hello:
      send(s, reply(d.h, std::vector<wire::hello_reply>{hello_}));
      return;
    case wire::operation::authenticate: // this server knows no client keys
      send(s, error(d.h, wire::status::authentication_failed));
      return;
    case wire::operation::create_transfers: {
      const auto ts = wire::records<ledger::transfer>(d.body, d.body_bytes);
      for (const auto& t : ts) {
        if (t.user_data_64 == 0xB06 || (t.user_data_64 == 0xB05 && busy_ids_.insert(t.id).second)) {
          ++busy_sent;
          send(s, error(d.h, wire::status::busy));
          return;
        }
      }
      {
        std::lock_guard<std::mutex> g(mutex_);
        create_frame_events_.push_back(d.h.event_count);
      }
      std::vector<wire::event_result> results;
      for (uint32_t i = 0; i < ts.size(); ++i)
        if (ts[i].amount == 0)
          results.push_back({i, uint32_t(ledger::transfer_result::amount_must_not_be_zero)});
      send(s, reply(d.h, results));
      return;
    }
    case wire::operation::create_accounts: {
      const auto as = wire::records<ledger::account>(d.body, d.body_bytes);
      std::vector<wire::event_result> results;
      for (uint32_t i = 0; i < as.size(); ++i)
        if (as[i].id == 0)
          results.push_back({i, uint32_t(ledger::account_result::id_must_not_be_zero)});
      send(s, reply(d.h, results));
      return;
    }
    case wire::operation::lookup_accounts: {
      const auto ids = wire::records<u128>(d.body, d.body_bytes);
      std::vector<ledger::account> found;
      for (u128 id : ids)
        if (id < 1'000'000) {
          ledger::account a{};
          a.id = id;
          a.ledger = 1;
          a.code = 1;
          found.push_back(a);
        }
      auto bytes = reply(d.h, found);
      if (!ids.empty() && ids[0] == 777 && s->held.empty()) {
        s->held = std::move(bytes); // answered after the next lookup's reply
        return;
      }
      send(s, std::move(bytes));
      if (!s->held.empty()) send(s, std::move(s->held));
      s->held.clear();
      return;
    }
    case wire::operation::lookup_transfers: {
      const auto ids = wire::records<u128>(d.body, d.body_bytes);
      if (!ids.empty() && ids[0] == 666) return; // never answered
      if (!ids.empty() && ids[0] == 555) {
        s->closed = true;
        boost::system::error_code ignored;
        s->socket.close(ignored);
        return;
      }
      std::vector<ledger::transfer> found;
      for (u128 id : ids) {
        ledger::transfer t{};
        t.id = id;
        t.amount = 10;
        found.push_back(t);
      }
      send(s, reply(d.h, found));
      return;
    }
    case wire::operation::get_account_transfers: {
      wire::filter f;
      std::memcpy(&f, d.body, sizeof f);
      std::vector<ledger::transfer> found;
      for (uint32_t i = 0; i < std::min<uint32_t>(f.limit, 3); ++i) {
        ledger::transfer t{};
        t.id = 100 + i;
        t.debit_account_id = f.account_id;
        t.timestamp = (f.timestamp_min ? f.timestamp_min : 1) + i;
        found.push_back(t);
      }
      send(s, reply(d.h, found));
      return;
    }
    case wire::operation::get_account_balances: {
      wire::filter f;
      std::memcpy(&f, d.body, sizeof f);
      if (f.account_id == 13) {
        send(s, error(d.h, wire::status::store_unavailable));
        return;
      }
      ledger::account_balance b{};
      b.credits_posted = 500;
      b.timestamp = 9;
      send(s, reply(d.h, std::vector<ledger::account_balance>{b}));
      return;
    }
    case wire::operation::submit_payments: {
      using namespace ledger::payments;
      const auto commands = wire::records<payment_command>(d.body, d.body_bytes);
      {
        std::lock_guard<std::mutex> g(mutex_);
        payment_frame_events_.push_back(d.h.event_count);
      }
      std::vector<payment_reply> replies;
      for (uint32_t i = 0; i < commands.size(); ++i) {
        payment_reply r{};
        r.index = i;
        r.result = uint32_t(commands[i].amount == 0 ? payment_result::amount_must_not_be_zero
                                                    : payment_result::in_progress);
        r.state = uint16_t(commands[i].amount == 0 ? order_state::none : order_state::processing);
        r.order_id = commands[i].order_id;
        r.amount = commands[i].amount;
        replies.push_back(r);
      }
      send(s, reply(d.h, replies));
      return;
    }
    case wire::operation::lookup_orders: {
      const auto ids = wire::records<u128>(d.body, d.body_bytes);
      {
        std::lock_guard<std::mutex> g(mutex_);
        payment_frame_events_.push_back(d.h.event_count);
      }
      std::vector<ledger::payments::order> found;
      for (u128 id : ids)
        if (id < 1'000'000) {
          ledger::payments::order o{};
          o.id = id;
          o.kind = uint16_t(ledger::payments::kind::create_order);
          o.state = uint16_t(ledger::payments::order_state::created);
          found.push_back(o);
        }
      send(s, reply(d.h, found));
      return;
    }
    case wire::operation::lookup_order_items: // orders without items
      send(s, reply(d.h, std::vector<ledger::payments::order_item>{}));
      return;
    case wire::operation::get_cases: // a server without reconciliation
    case wire::operation::resolve_case:
      send(s, error(d.h, wire::status::reconciliation_disabled));
      return;
    }
  }

  wire::hello_reply hello_;
  bool silent_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  std::set<u128> busy_ids_; // io thread only
  std::mutex mutex_;
  std::vector<uint32_t> create_frame_events_;
  std::vector<uint32_t> payment_frame_events_;
  std::vector<wire::context> contexts_;
};

} // namespace kassa::test
