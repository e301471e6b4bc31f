#include "runtime/server_cases.hpp"

#include <cstring>

#include "actors/reconciler.hpp"

namespace kassa::runtime {

namespace ks = ledger::store;

void get_cases(caf::event_based_actor* self, const caf::actor& reconciler, const std::vector<uint8_t>& body,
               const access::client* who, case_answer answer) {
  wire::cases_filter f;
  std::memcpy(&f, body.data(), sizeof f); // the codec checked its size and rules
  actors::recon_cases_request r;
  r.open_only = (f.flags & wire::cases_open_only) != 0;
  r.id_min = f.id_min;
  r.limit = f.limit;
  self->request(reconciler, caf::infinite, r)
      .then(
          [answer, who](actors::recon_cases_reply& got) {
            if (!got.error.ok()) return answer(wire::status::store_unavailable, nullptr, 0, 0);
            std::vector<wire::case_record> records;
            records.reserve(got.cases.size());
            for (size_t i = 0; i < got.cases.size(); ++i)
              if (who == nullptr || who->ledger_allowed(got.cases[i].ledger))
                records.push_back({got.cases[i], got.resolutions[i]});
            answer(wire::status::ok, records.data(), records.size() * sizeof(wire::case_record), records.size());
          },
          [answer](caf::error&) { answer(wire::status::internal, nullptr, 0, 0); });
}

void resolve_case(caf::event_based_actor* self, const caf::actor& reconciler, const std::vector<uint8_t>& body,
                  const access::client* who, case_answer answer) {
  ks::recon_resolution req;
  std::memcpy(&req, body.data(), sizeof req);
  actors::resolve_case r;
  r.id = req.case_id;
  r.action = req.action;
  r.direction = req.direction;
  r.amount = req.amount;
  r.by.assign(req.by, strnlen(req.by, sizeof req.by));
  r.note.assign(req.note, strnlen(req.note, sizeof req.note));
  if (who != nullptr) {
    r.client_id = who->id;
    r.ledgers = who->ledgers;
  }
  self->request(reconciler, caf::infinite, std::move(r))
      .then(
          [answer, id = req.case_id](actors::recon_case_resolved& got) {
            if (!got.error.ok()) return answer(wire::status::store_unavailable, nullptr, 0, 0);
            wire::resolve_reply out;
            out.result = uint32_t(got.result);
            out.case_id = id;
            out.transfer_id = got.resolution.transfer_id;
            out.amount = got.resolution.amount;
            answer(wire::status::ok, &out, sizeof out, 1);
          },
          [answer](caf::error&) { answer(wire::status::internal, nullptr, 0, 0); });
}

} // namespace kassa::runtime
