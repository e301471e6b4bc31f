#include "metrics/registry.hpp"

#include <stdexcept>

namespace kassa::metrics {

namespace {

bool name_char(char c, bool first, bool colon) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return alpha || (!first && c >= '0' && c <= '9');
}

bool valid_name(std::string_view s, bool colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!name_char(s[i], i == 0, colon)) return false;
  }
  return true;
}

std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// `{a="x",b="y"}` with `extra` (the le label of a bucket) last; empty when there are none.
void write_labels(std::string& out, const labels& l, const label* extra) {
  if (l.empty() && extra == nullptr) return;
  out += '{';
  bool first = true;
  auto one = [&](const label& x) {
    if (!first) out += ',';
    first = false;
    out += x.first;
    out += "=\"";
    out += escape_label_value(x.second);
    out += '"';
  };
  for (const label& x : l) one(x);
  if (extra != nullptr) one(*extra);
  out += '}';
}

} // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string decimal(uint64_t value, uint64_t scale) {
  std::string out = std::to_string(value / scale);
  if (scale == 1) return out;
  std::string frac = std::to_string(value % scale);
  const size_t digits = std::to_string(scale).size() - 1;
  frac.insert(0, digits - frac.size(), '0');
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  if (!frac.empty()) out += "." + frac;
  return out;
}

buckets seconds_buckets() {
  buckets b;
  for (unsigned k = 0; k <= 24; ++k) b.bounds.push_back(uint64_t{1000} << k);
  b.scale = 1'000'000'000;
  return b;
}

buckets powers_of_two(unsigned k_max) {
  buckets b;
  for (unsigned k = 0; k <= k_max; ++k) b.bounds.push_back(uint64_t{1} << k);
  return b;
}

histogram::histogram(buckets b)
    : spec_(std::move(b)), counts_(new std::atomic<uint64_t>[spec_.bounds.size() + 1]) {
  for (size_t i = 0; i <= spec_.bounds.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

histogram::snapshot histogram::read() const {
  snapshot s;
  s.cumulative.resize(spec_.bounds.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= spec_.bounds.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

registry::child& registry::find(std::string_view name, std::string_view help, kind type,
                                 const labels& l, const buckets* b) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_name_.find(name);
  family* f = nullptr;
  if (it == by_name_.end()) {
    if (!valid_name(name, true)) throw std::logic_error("bad metric name: " + std::string(name));
    auto fresh = std::make_unique<family>();
    fresh->name = std::string(name);
    fresh->help = std::string(help);
    fresh->type = type;
    if (b != nullptr) {
      for (size_t i = 0; i < b->bounds.size(); ++i) {
        if (i > 0 && b->bounds[i] <= b->bounds[i - 1]) throw std::logic_error("bucket bounds must ascend: " + fresh->name);
      }
      std::string s = std::to_string(b->scale);
      if (s.find_first_not_of('0', 1) != std::string::npos || s[0] != '1') {
        throw std::logic_error("bucket scale must be a power of ten: " + fresh->name);
      }
      fresh->bounds = b->bounds;
      fresh->scale = b->scale;
    }
    f = fresh.get();
    families_.push_back(std::move(fresh));
    by_name_.emplace(f->name, f);
  } else {
    f = it->second;
    if (f->type != type || f->help != help || (b != nullptr && (f->bounds != b->bounds || f->scale != b->scale))) {
      throw std::logic_error("metric registered twice differently: " + f->name);
    }
  }
  for (auto& c : f->children) {
    if (c->l == l) return *c;
  }
  for (const label& x : l) {
    if (!valid_name(x.first, false) || x.first.rfind("__", 0) == 0 || (type == kind::histogram && x.first == "le")) {
      throw std::logic_error("bad label name '" + x.first + "' of " + f->name);
    }
  }
  auto c = std::make_unique<child>();
  c->l = l;
  switch (type) {
    case kind::counter: c->c = std::make_unique<counter>(); break;
    case kind::gauge: c->g = std::make_unique<gauge>(); break;
    case kind::histogram: c->h = std::make_unique<histogram>(buckets{f->bounds, f->scale}); break;
  }
  f->children.push_back(std::move(c));
  return *f->children.back();
}

counter& registry::get_counter(std::string_view name, std::string_view help, const labels& l) {
  return *find(name, help, kind::counter, l, nullptr).c;
}

gauge& registry::get_gauge(std::string_view name, std::string_view help, const labels& l) {
  return *find(name, help, kind::gauge, l, nullptr).g;
}

histogram& registry::get_histogram(std::string_view name, std::string_view help, const labels& l,
                                   const buckets& b) {
  return *find(name, help, kind::histogram, l, &b).h;
}

std::string registry::text() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out.reserve(4096);
  for (const auto& f : families_) {
    out += "# HELP " + f->name + " " + escape_help(f->help) + "\n";
    out += "# TYPE " + f->name + " ";
    out += f->type == kind::counter ? "counter" : f->type == kind::gauge ? "gauge" : "histogram";
    out += '\n';
    for (const auto& c : f->children) {
      if (f->type != kind::histogram) {
        out += f->name;
        write_labels(out, c->l, nullptr);
        out += ' ';
        out += f->type == kind::counter ? std::to_string(c->c->value()) : std::to_string(c->g->value());
        out += '\n';
        continue;
      }
      const histogram::snapshot s = c->h->read();
      for (size_t i = 0; i <= f->bounds.size(); ++i) {
        const label le{"le", i < f->bounds.size() ? decimal(f->bounds[i], f->scale) : "+Inf"};
        out += f->name + "_bucket";
        write_labels(out, c->l, &le);
        out += ' ' + std::to_string(s.cumulative[i]) + '\n';
      }
      out += f->name + "_sum";
      write_labels(out, c->l, nullptr);
      out += ' ' + decimal(s.sum, f->scale) + '\n';
      out += f->name + "_count";
      write_labels(out, c->l, nullptr);
      out += ' ' + std::to_string(s.count) + '\n';
    }
  }
  return out;
}

registry& process_registry() {
  // Never destroyed: actors on CAF's threads may still record into it while the process exits
  // (an in-process core that is never stopped, as in the request fuzzer), and a static's
  // destructor would free the metrics under them.
  static registry& r = *new registry;
  return r;
}

} // namespace kassa::metrics
