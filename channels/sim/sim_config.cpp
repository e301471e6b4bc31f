#include "channels/sim/sim_config.hpp"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace kassa::channels::sim {

namespace {

struct u64_key {
  const char* key; // "latency.min_ms" for the nested latency map
  uint64_t behaviour::*field;
};

const u64_key u64_keys[] = {
    {"latency.min_ms", &behaviour::latency_min_ms},
    {"latency.median_ms", &behaviour::latency_median_ms},
    {"latency.p99_ms", &behaviour::latency_p99_ms},
    {"latency.max_ms", &behaviour::latency_max_ms},
    {"decline_ppm", &behaviour::decline_ppm},
    {"timeout_ppm", &behaviour::timeout_ppm},
    {"unknown_ppm", &behaviour::unknown_ppm},
    {"pending_ppm", &behaviour::pending_ppm},
    {"partial_ppm", &behaviour::partial_ppm},
    {"partial_amount_ppm", &behaviour::partial_amount_ppm},
    {"mismatch_ppm", &behaviour::mismatch_ppm},
    {"mismatch_delta", &behaviour::mismatch_delta},
    {"duplicate_callback_ppm", &behaviour::duplicate_callback_ppm},
    {"late_callback_ppm", &behaviour::late_callback_ppm},
    {"late_callback_ms", &behaviour::late_callback_ms},
    {"callback_delay_ms", &behaviour::callback_delay_ms},
    {"credential_latency_ms", &behaviour::credential_latency_ms},
    {"credential_ttl_ms", &behaviour::credential_ttl_ms},
    {"statement_missing_ppm", &behaviour::statement_missing_ppm},
    {"statement_amount_mismatch_ppm", &behaviour::statement_amount_mismatch_ppm},
    {"statement_mismatch_delta", &behaviour::statement_mismatch_delta},
    {"statement_extra_ppm", &behaviour::statement_extra_ppm},
    {"timeout_hold_ms", &behaviour::timeout_hold_ms},
    {"payments_max", &behaviour::payments_max},
    {"events_max", &behaviour::events_max},
    {"forced_max", &behaviour::forced_max},
};

const u64_key* find_key(const std::string& key) {
  for (const auto& k : u64_keys) {
    if (key == k.key) return &k;
  }
  return nullptr;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string at(const YAML::Node& n) { return " (line " + std::to_string(n.Mark().line + 1) + ")"; }

bool yaml_u64(const YAML::Node& n, uint64_t& out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

bool yaml_bool(const YAML::Node& n, bool& out) {
  if (!n.IsScalar()) return false;
  if (n.Scalar() == "true") out = true;
  else if (n.Scalar() == "false") out = false;
  else return false;
  return true;
}

bool read_behaviour(const YAML::Node& map, const std::string& where, behaviour& b, std::string& error) {
  if (!map.IsMap()) {
    error = where + ": not a map" + at(map);
    return false;
  }
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    const std::string path = where + "." + key;
    if (key == "latency") {
      if (!kv.second.IsMap()) {
        error = path + ": not a map" + at(kv.second);
        return false;
      }
      for (const auto& lk : kv.second) {
        const u64_key* k = find_key("latency." + lk.first.Scalar());
        if (!k) {
          error = path + "." + lk.first.Scalar() + ": unknown key" + at(lk.first);
          return false;
        }
        if (!yaml_u64(lk.second, b.*(k->field))) {
          error = path + "." + lk.first.Scalar() + ": not an unsigned integer" + at(lk.second);
          return false;
        }
      }
      continue;
    }
    if (key == "credentials_required") {
      if (!yaml_bool(kv.second, b.credentials_required)) {
        error = path + ": not true or false" + at(kv.second);
        return false;
      }
      continue;
    }
    const u64_key* k = key.rfind("latency.", 0) == 0 ? nullptr : find_key(key);
    if (!k) {
      error = path + ": unknown key" + at(kv.first);
      return false;
    }
    if (!yaml_u64(kv.second, b.*(k->field))) {
      error = path + ": not an unsigned integer" + at(kv.second);
      return false;
    }
  }
  std::string why;
  if (!validate(b, why)) {
    error = where + ": " + why;
    return false;
  }
  return true;
}

} // namespace

bool validate(const behaviour& b, std::string& error) {
  for (const auto& k : u64_keys) {
    if (ends_with(k.key, "_ppm") && b.*(k.field) > 1'000'000) {
      error = std::string(k.key) + ": above 1000000 ppm";
      return false;
    }
  }
  if (!(b.latency_min_ms <= b.latency_median_ms && b.latency_median_ms <= b.latency_p99_ms &&
        b.latency_p99_ms <= b.latency_max_ms)) {
    error = "latency: min_ms <= median_ms <= p99_ms <= max_ms does not hold";
    return false;
  }
  if (b.latency_max_ms > 600'000 || b.late_callback_ms > 86'400'000 || b.callback_delay_ms > 86'400'000 ||
      b.timeout_hold_ms > 3'600'000 || b.credential_latency_ms > 600'000) {
    error = "a time is out of range (latency <= 10 min, callbacks <= 1 day, hold <= 1 h)";
    return false;
  }
  if (b.payments_max == 0 || b.events_max == 0 || b.forced_max == 0 || b.credential_ttl_ms == 0) {
    error = "payments_max, events_max, forced_max and credential_ttl_ms must be above zero";
    return false;
  }
  if (b.mismatch_delta == 0 || b.statement_mismatch_delta == 0) {
    error = "mismatch_delta and statement_mismatch_delta must be above zero";
    return false;
  }
  return true;
}

bool apply_json(const nlohmann::json& j, behaviour& out, std::string& error) {
  if (!j.is_object()) {
    error = "behaviour: not an object";
    return false;
  }
  behaviour b = out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "latency") {
      if (!it->is_object()) {
        error = "latency: not an object";
        return false;
      }
      for (auto lt = it->begin(); lt != it->end(); ++lt) {
        const u64_key* k = find_key("latency." + lt.key());
        if (!k) {
          error = "latency." + lt.key() + ": unknown key";
          return false;
        }
        if (!lt->is_number_unsigned()) {
          error = "latency." + lt.key() + ": not an unsigned integer";
          return false;
        }
        b.*(k->field) = lt->get<uint64_t>();
      }
      continue;
    }
    if (key == "credentials_required") {
      if (!it->is_boolean()) {
        error = key + ": not a boolean";
        return false;
      }
      b.credentials_required = it->get<bool>();
      continue;
    }
    const u64_key* k = key.rfind("latency.", 0) == 0 ? nullptr : find_key(key);
    if (!k) {
      error = key + ": unknown key";
      return false;
    }
    if (!it->is_number_unsigned()) {
      error = key + ": not an unsigned integer";
      return false;
    }
    b.*(k->field) = it->get<uint64_t>();
  }
  if (!validate(b, error)) return false;
  out = b;
  return true;
}

nlohmann::json to_json(const behaviour& b) {
  nlohmann::json j = nlohmann::json::object();
  nlohmann::json latency = nlohmann::json::object();
  for (const auto& k : u64_keys) {
    std::string key = k.key;
    if (key.rfind("latency.", 0) == 0) latency[key.substr(8)] = b.*(k.field);
    else j[key] = b.*(k.field);
  }
  j["latency"] = latency;
  j["credentials_required"] = b.credentials_required;
  return j;
}

bool load_config(const std::string& path, sim_config& out, std::string& error) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    error = path + ": " + e.what();
    return false;
  }
  if (!root.IsMap()) {
    error = path + ": the top level is not a map";
    return false;
  }
  sim_config c;
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (key == "seed") {
      if (!yaml_u64(kv.second, c.seed)) {
        error = "seed: not an unsigned integer" + at(kv.second);
        return false;
      }
      c.seed_set = true;
    } else if (key == "server") {
      if (!kv.second.IsMap()) {
        error = "server: not a map" + at(kv.second);
        return false;
      }
      for (const auto& sk : kv.second) {
        const std::string name = sk.first.Scalar();
        uint64_t* field = name == "connections_max" ? &c.server.connections_max
                          : name == "body_bytes_max" ? &c.server.body_bytes_max
                          : name == "idle_ms"        ? &c.server.idle_ms
                                                     : nullptr;
        if (!field) {
          error = "server." + name + ": unknown key" + at(sk.first);
          return false;
        }
        if (!yaml_u64(sk.second, *field) || *field == 0) {
          error = "server." + name + ": not an unsigned integer above zero" + at(sk.second);
          return false;
        }
      }
    } else if (key == "providers") {
      if (!kv.second.IsMap() || kv.second.size() == 0) {
        error = "providers: not a non-empty map" + at(kv.second);
        return false;
      }
      for (const auto& pk : kv.second) {
        const std::string name = pk.first.Scalar();
        if (name.empty() || name.size() > 64 || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos) {
          error = "providers." + name + ": a provider name is 1-64 of [a-z0-9_-]" + at(pk.first);
          return false;
        }
        behaviour b;
        if (!read_behaviour(pk.second, "providers." + name, b, error)) return false;
        c.providers[name] = b;
      }
    } else {
      error = key + ": unknown key" + at(kv.first);
      return false;
    }
  }
  if (c.providers.empty()) {
    error = "providers: missing";
    return false;
  }
  out = std::move(c);
  return true;
}

} // namespace kassa::channels::sim
