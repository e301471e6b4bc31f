#include "perf/report/report.hpp"

#include "perf/report/chart.hpp"
#include "perf/report/format.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace kassa::report {

using json = nlohmann::json;

void read_json_lines(std::istream& in, const std::string& origin, input& out) {
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    json value = json::parse(line, nullptr, /*allow_exceptions=*/false);
    std::string where = origin + ":" + std::to_string(number);
    if (value.is_discarded()) {
      out.notes.push_back(where + ": not JSON, skipped");
      continue;
    }
    out.lines.push_back(std::move(value));
    out.origins.push_back(where);
  }
}

namespace {

// ---- the model: what the lines say, per scenario ---------------------------------------------

// The finite number under `key`, or NaN when it is missing or not a number.
double number(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return NAN;
  double v = it->get<double>();
  return std::isfinite(v) ? v : NAN;
}

bool known(double v) { return std::isfinite(v); }

// nlohmann's dump recurses once a level: a value nested deeper than this is not printed.
constexpr int json_depth_max = 64;

bool deeper_than(const json& j, int levels) {
  if (!j.is_structured()) return false;
  if (levels == 0) return true;
  for (const json& e : j) {
    if (deeper_than(e, levels - 1)) return true;
  }
  return false;
}

// A string as it is; any other value as its JSON text.
std::string text_of(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (deeper_than(value, json_depth_max)) {
    return "(nested deeper than " + std::to_string(json_depth_max) + " levels)";
  }
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// text_of the value under `key`; "" when missing.
std::string text_of(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return text_of(*it);
}

struct tick {
  double t_s;
  double events_per_s;
  double requests;
  double errors;
  double p50_us;
  double p99_us;
};

struct stage {
  std::string name;
  double count;
  double mean_us;
  double p50_us;
  double p99_us;
};

struct named_count {
  std::string name;
  double count;
};

struct summary {
  double seconds = NAN;
  double requests = NAN;
  double events = NAN;
  double events_per_s = NAN;
  double requests_per_s = NAN;
  std::vector<std::pair<std::string, double>> latency_us; // p50 ... max, as present
  double mean_us = NAN;
  std::vector<histogram_bin> histogram;
  std::vector<named_count> results;
  std::vector<named_count> request_errors;
  std::vector<named_count> commands; // payments scenarios: commands sent, by kind
};

struct scenario {
  std::string name;
  std::string id; // unique, safe in an element id
  const json* run = nullptr;
  std::vector<tick> ticks;
  std::optional<summary> result;
  std::optional<std::vector<stage>> stages;
  std::string stages_source;

  bool empty() const { return !run && ticks.empty() && !result && !stages; }
};

struct compare_row {
  std::string workload;
  std::string target;
  double kassa_per_s;
  double peer_per_s;
  double ratio;
  double p99_us;
  std::optional<bool> met;
};

struct comparison {
  std::string id;
  std::string machine;
  std::string command;
  std::vector<compare_row> rows;
};

struct model {
  std::vector<scenario> scenarios;
  std::vector<comparison> comparisons;
  std::vector<std::string> notes;
  size_t lines_used = 0;
};

// Counts under `key` ({"ok":N,...}), largest first; entries that are not counts are noted.
std::vector<named_count> counts_of(const json& j, const char* key, std::vector<std::string>& bad) {
  std::vector<named_count> out;
  auto it = j.find(key);
  if (it == j.end()) return out;
  if (!it->is_object()) {
    bad.push_back(std::string("\"") + key + "\" is not an object");
    return out;
  }
  for (auto e = it->begin(); e != it->end(); ++e) {
    if (!e.value().is_number() || !known(e.value().get<double>()) || e.value().get<double>() < 0) {
      bad.push_back(std::string("\"") + key + "\" entry \"" + e.key() + "\" is not a count");
      continue;
    }
    out.push_back({e.key(), e.value().get<double>()});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const named_count& a, const named_count& b) { return a.count > b.count; });
  return out;
}

// Display bins from the summary's log buckets (the non-empty ones, by upper bound). A bucket
// starts where the one below it ends, or one bucket width (the smallest ratio between
// neighbours) below its upper bound. kassa-bench's buckets are ~3% wide; drawn one by one they
// would be slivers, so buckets finer than `bins_per_decade` are summed into bins of that width.
// A log axis has no 0: a bucket of 0 µs is drawn with the next one (or as the one up to 1 µs).
constexpr int bins_per_decade = 20;

std::vector<histogram_bin> display_bins(std::vector<double> ups, std::vector<double> ns) {
  if (!ups.empty() && ups[0] <= 0) {
    if (ups.size() == 1) {
      ups[0] = 1;
    } else {
      ns[1] += ns[0];
      ups.erase(ups.begin());
      ns.erase(ns.begin());
    }
  }
  double factor = 2;
  for (size_t i = 1; i < ups.size(); ++i) {
    factor = i == 1 ? ups[1] / ups[0] : std::min(factor, ups[i] / ups[i - 1]);
  }
  std::vector<histogram_bin> bins;
  if (factor >= std::pow(10.0, 1.0 / bins_per_decade)) {
    for (size_t i = 0; i < ups.size(); ++i) {
      double lo = ups[i] / factor;
      if (i > 0) lo = std::max(lo, ups[i - 1]);
      if (ns[i] > 0) bins.push_back({lo, ups[i], ns[i]});
    }
    return bins;
  }
  std::map<long, double> summed; // bin k holds (10^((k-1)/n), 10^(k/n)]
  for (size_t i = 0; i < ups.size(); ++i) {
    if (ns[i] > 0) summed[long(std::ceil(bins_per_decade * std::log10(ups[i]) - 1e-9))] += ns[i];
  }
  for (auto [k, n] : summed) {
    bins.push_back({std::pow(10.0, double(k - 1) / bins_per_decade),
                    std::pow(10.0, double(k) / bins_per_decade), n});
  }
  return bins;
}

std::vector<histogram_bin> histogram_of(const json& j, std::vector<std::string>& bad) {
  auto it = j.find("histogram");
  if (it == j.end()) return {};
  const json& h = *it;
  auto upper = h.is_object() ? h.find("upper_us") : h.end();
  auto counts = h.is_object() ? h.find("counts") : h.end();
  if (!h.is_object() || upper == h.end() || counts == h.end() || !upper->is_array() ||
      !counts->is_array() || upper->size() != counts->size()) {
    bad.push_back("histogram needs arrays upper_us and counts of the same length");
    return {};
  }
  std::vector<double> ups, ns;
  for (size_t i = 0; i < upper->size(); ++i) {
    const json& u = (*upper)[i];
    const json& n = (*counts)[i];
    if (!u.is_number() || !n.is_number() || !(u.get<double>() >= 0) || !known(u.get<double>()) ||
        !(n.get<double>() >= 0) || !known(n.get<double>()) ||
        (!ups.empty() && !(u.get<double>() > ups.back()))) {
      bad.push_back("histogram bucket " + std::to_string(i) +
                    " is not an increasing bound (>= 0) with a count");
      return {};
    }
    ups.push_back(u.get<double>());
    ns.push_back(n.get<double>());
  }
  return display_bins(std::move(ups), std::move(ns));
}

class collector {
public:
  explicit collector(model& m) : m_(m) {}

  // Adds one line to the model; notes problems inside it (naming `where`) and returns why the
  // whole line was skipped, or "" when it was used.
  std::string add(const json& j, const std::string& where) {
    where_ = where;
    if (!j.is_object()) return "not a JSON object";
    auto type = j.find("type");
    if (type == j.end() || !type->is_string()) return "no \"type\"";
    auto name = j.find("scenario");
    if (name == j.end() || !name->is_string()) return "no \"scenario\"";
    const std::string& t = type->get_ref<const std::string&>();
    const std::string& n = name->get_ref<const std::string&>();
    if (t == "run") return add_run(j, n);
    if (t == "tick") return add_tick(j, n);
    if (t == "summary") return add_summary(j, n);
    if (t == "stages") return add_stages(j, n);
    if (t == "compare") return add_compare(j, n);
    return "unknown type \"" + t + "\"";
  }

private:
  // The latest scenario of that name; a run line opens a new one unless the latest is empty,
  // so that the same scenario run twice (two files, or appended) shows twice.
  scenario& scenario_named(const std::string& name, bool opens) {
    for (auto it = m_.scenarios.rbegin(); it != m_.scenarios.rend(); ++it) {
      if (it->name != name) continue;
      if (!opens || it->empty()) return *it;
      break;
    }
    scenario s;
    s.name = name;
    s.id = unique_id(slug(name));
    m_.scenarios.push_back(std::move(s));
    return m_.scenarios.back();
  }

  std::string unique_id(const std::string& base) {
    std::string id = base;
    for (int i = 2; !ids_.insert(id).second; ++i) id = base + "-" + std::to_string(i);
    return id;
  }

  std::string add_run(const json& j, const std::string& name) {
    scenario_named(name, true).run = &j;
    return "";
  }

  std::string add_tick(const json& j, const std::string& name) {
    tick t{number(j, "t_s"),          number(j, "events_per_s"), number(j, "requests"),
           number(j, "errors"),       number(j, "p50_us"),       number(j, "p99_us")};
    if (!known(t.t_s) || !known(t.events_per_s)) return "tick without numbers t_s and events_per_s";
    scenario_named(name, false).ticks.push_back(t);
    return "";
  }

  std::string add_summary(const json& j, const std::string& name) {
    scenario& s = scenario_named(name, false);
    if (s.result) return "a second summary for scenario \"" + name + "\"";
    summary r;
    r.seconds = number(j, "seconds");
    r.requests = number(j, "requests");
    r.events = number(j, "events");
    r.events_per_s = number(j, "events_per_s");
    r.requests_per_s = number(j, "requests_per_s");
    std::vector<std::string> bad;
    auto latency = j.find("latency_us");
    if (latency != j.end() && latency->is_object()) {
      static const std::pair<const char*, const char*> keys[] = {
          {"p50", "p50"}, {"p90", "p90"}, {"p99", "p99"}, {"p999", "p99.9"}, {"max", "max"}};
      for (auto [key, label] : keys) {
        double v = number(*latency, key);
        if (known(v)) r.latency_us.push_back({label, v});
      }
      r.mean_us = number(*latency, "mean");
    } else if (latency != j.end()) {
      bad.push_back("\"latency_us\" is not an object");
    }
    r.histogram = histogram_of(j, bad);
    r.results = counts_of(j, "results", bad);
    r.request_errors = counts_of(j, "request_errors", bad);
    r.commands = counts_of(j, "commands", bad);
    s.result = std::move(r);
    for (const std::string& b : bad) note("summary of \"" + name + "\": " + b);
    return "";
  }

  std::string add_stages(const json& j, const std::string& name) {
    auto list = j.find("stages");
    if (list == j.end() || !list->is_array()) return "stages line without a \"stages\" array";
    std::vector<stage> stages;
    for (const json& e : *list) {
      if (!e.is_object() || !e.contains("stage") || !e["stage"].is_string()) {
        note("stages of \"" + name + "\": an entry without a stage name, skipped");
        continue;
      }
      stages.push_back({e["stage"].get<std::string>(), number(e, "count"), number(e, "mean_us"),
                        number(e, "p50_us"), number(e, "p99_us")});
    }
    scenario& s = scenario_named(name, false);
    s.stages = std::move(stages);
    s.stages_source = text_of(j, "source");
    return "";
  }

  std::string add_compare(const json& j, const std::string& name) {
    auto rows = j.find("rows");
    if (rows == j.end() || !rows->is_array()) return "compare line without a \"rows\" array";
    comparison c;
    c.id = unique_id("compare-" + std::to_string(m_.comparisons.size() + 1));
    c.machine = text_of(j, "machine");
    c.command = text_of(j, "command");
    for (const json& r : *rows) {
      if (!r.is_object()) {
        note("compare \"" + name + "\": a row that is not an object, skipped");
        continue;
      }
      compare_row row{text_of(r, "workload"),  text_of(r, "target"),
                      number(r, "kassa_per_s"), number(r, "peer_per_s"),
                      number(r, "ratio"),       number(r, "p99_us"),
                      std::nullopt};
      if (!known(row.ratio) && known(row.kassa_per_s) && row.peer_per_s > 0) {
        row.ratio = row.kassa_per_s / row.peer_per_s;
      }
      auto met = r.find("met");
      if (met != r.end() && met->is_boolean()) row.met = met->get<bool>();
      c.rows.push_back(std::move(row));
    }
    m_.comparisons.push_back(std::move(c));
    return "";
  }

  void note(const std::string& what) { m_.notes.push_back(where_ + ": " + what); }

  model& m_;
  std::set<std::string> ids_;
  std::string where_; // of the line being added
};

model collect(const input& in) {
  model m;
  m.notes = in.notes;
  collector c(m);
  for (size_t i = 0; i < in.lines.size(); ++i) {
    std::string where = i < in.origins.size() ? in.origins[i] : "line " + std::to_string(i + 1);
    std::string why = c.add(in.lines[i], where);
    if (why.empty()) {
      ++m.lines_used;
    } else {
      m.notes.push_back(where + ": " + why + ", skipped");
    }
  }
  // Ticks appended out of order (two files of one scenario, say) still draw left to right.
  for (scenario& s : m.scenarios) {
    std::stable_sort(s.ticks.begin(), s.ticks.end(),
                     [](const tick& a, const tick& b) { return a.t_s < b.t_s; });
  }
  return m;
}

// ---- the page --------------------------------------------------------------------------------

const char* const style = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a202c;margin:0 auto;
  max-width:1340px;padding:12px 24px 40px;line-height:1.4}
h1{font-size:1.6em;margin-bottom:4px}
h2{font-size:1.3em;border-bottom:2px solid #cbd5e0;padding-bottom:4px;margin-top:2.2em}
h3{font-size:1.05em;margin:1.2em 0 0.3em}
.meta{color:#4a5568;margin-top:0}
.kind{font-size:0.7em;font-weight:normal;color:#4a5568;background:#edf2f7;border-radius:4px;
  padding:1px 6px;margin-left:6px;vertical-align:middle}
table{border-collapse:collapse;margin:6px 0 14px;font-size:0.9em}
th,td{border:1px solid #e2e8f0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f7fafc}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:0.9em;word-break:break-all}
.charts{display:flex;flex-wrap:wrap;gap:14px;margin:10px 0;align-items:flex-start}
.tables,.head{display:flex;flex-wrap:wrap;gap:0 28px;align-items:flex-start}
svg.chart{border:1px solid #e2e8f0;border-radius:4px;background:#fff;max-width:100%;height:auto}
svg .chart-title{font-size:13px;font-weight:600;fill:#1a202c}
svg .tick{font-size:10px;fill:#4a5568}
svg .axis-label,svg .legend-label,svg .bar-label,svg .bar-value{font-size:11px;fill:#2d3748}
svg .bar-inside{font-size:11px;fill:#fff;font-weight:600}
svg .bar-note{font-size:12px;font-weight:600;fill:#1a202c}
svg .grid{stroke:#edf2f7;stroke-width:1}
svg .axis{stroke:#718096;stroke-width:1}
svg .series{stroke-width:1.5}
svg .reference{stroke:#a0aec0;stroke-width:1;stroke-dasharray:4 3}
svg .reference-label,svg .caption{font-size:10px;fill:#4a5568}
.run td{max-width:640px}
.missing{color:#718096;font-style:italic}
.notes{background:#fffbea;border:1px solid #f6e05e;border-radius:4px;padding:6px 16px;margin:12px 0}
.met{color:#276749;font-weight:600}
.missed{color:#c53030;font-weight:600}
nav a{margin-right:12px}
footer{margin-top:3em;color:#718096;font-size:0.85em}
@media print{body{max-width:none;padding:0}svg.chart,table{break-inside:avoid}}
)";

std::string esc(const std::string& s) { return escape_html(s); }

std::string cell(const std::string& content, bool numeric = false) {
  return std::string(numeric ? "<td class=\"num\">" : "<td>") + esc(content) + "</td>";
}

std::string header_cell(const std::string& content, bool numeric = false) {
  return std::string(numeric ? "<th class=\"num\">" : "<th>") + esc(content) + "</th>";
}

std::string missing(const std::string& what) {
  return "<p class=\"missing\">" + esc(what) + "</p>\n";
}

// One row of a two-column table of facts, left out when there is no value.
std::string fact(const std::string& name, const std::string& value, bool mono = false) {
  if (value.empty()) return "";
  return "<tr><th>" + esc(name) + "</th><td" + (mono ? " class=\"mono\"" : "") + ">" + esc(value) +
         "</td></tr>\n";
}

std::string figure(double v, formatter f) { return known(v) ? f(v) : ""; }

std::string run_header(const scenario& s) {
  std::string out = "<table class=\"run\" id=\"run-" + s.id + "\">\n";
  if (s.run) {
    const json& r = *s.run;
    out += fact("started (UTC)", text_of(r, "started_utc"));
    out += fact("machine", text_of(r, "machine"));
    out += fact("command", text_of(r, "command"), true);
    auto shadow = r.find("shadow");
    if (shadow != r.end() && shadow->is_boolean()) {
      out += fact("shadow",
                  shadow->get<bool>() ? "yes (requests go to kassad's shadow store)" : "no");
    }
  }
  if (s.result) {
    out += fact("seconds", figure(s.result->seconds, format_seconds));
  }
  out += "</table>\n";
  if (!s.run) return out + missing("No run line: started, machine, command and settings unknown.");
  auto settings = s.run->find("settings");
  if (settings == s.run->end() || !settings->is_object() || settings->empty()) return out;
  out += "<details open><summary>Settings (" + std::to_string(settings->size()) +
         ")</summary>\n<table class=\"settings\" id=\"settings-" + s.id + "\">\n";
  for (auto it = settings->begin(); it != settings->end(); ++it) {
    out += "<tr><th>" + esc(it.key()) + "</th><td class=\"mono\">" + esc(text_of(it.value())) +
           "</td></tr>\n";
  }
  return out + "</table>\n</details>\n";
}

std::string throughput_chart(const scenario& s) {
  if (s.ticks.empty()) return missing("No per-second ticks: no throughput over time.");
  line_chart c{"throughput-" + s.id, "Throughput: events/s, each second", "time (s)", "events/s",
               format_seconds, format_count, {}};
  // A rate over a short window (the run's last, partial second) is noise: left out.
  const double window_s_min = 0.5;
  series events{"events/s", {}, {}};
  double previous_t_s = 0;
  std::vector<std::string> short_windows;
  for (const tick& t : s.ticks) {
    double window_s = t.t_s - std::exchange(previous_t_s, t.t_s);
    if (window_s < window_s_min) {
      short_windows.push_back(format_seconds(window_s) + " at " + format_seconds(t.t_s));
      continue;
    }
    events.points.push_back({t.t_s, t.events_per_s});
    std::string tip = format_seconds(t.t_s) + ": " + format_grouped(t.events_per_s) + " events/s";
    if (known(t.requests)) tip += ", " + format_grouped(t.requests) + " requests";
    if (known(t.errors)) tip += ", " + format_grouped(t.errors) + " errors";
    events.tips.push_back(tip);
  }
  c.lines.push_back(std::move(events));
  if (short_windows.size() == 1) {
    c.caption = "left out: a tick of " + short_windows[0];
  } else if (!short_windows.empty()) {
    c.caption = "left out: " + std::to_string(short_windows.size()) + " ticks under 0.5 s";
  }
  if (s.result && known(s.result->events_per_s)) {
    c.references.push_back({"run: " + format_count(s.result->events_per_s) + "/s",
                            s.result->events_per_s});
  }
  return render(c);
}

std::string latency_time_chart(const scenario& s) {
  series p50{"p50", {}, {}}, p99{"p99", {}, {}};
  for (const tick& t : s.ticks) {
    if (t.requests == 0) continue; // no reply in that second: its 0 µs is no latency
    if (known(t.p50_us)) p50.points.push_back({t.t_s, t.p50_us});
    if (known(t.p99_us)) p99.points.push_back({t.t_s, t.p99_us});
  }
  if (p50.points.empty() && p99.points.empty()) {
    return missing("No per-second latency: no latency over time.");
  }
  line_chart c{"latency-" + s.id, "Request latency each second: p50 and p99", "time (s)",
               "latency", format_seconds, format_duration_us, {}};
  if (!p50.points.empty()) c.lines.push_back(std::move(p50));
  if (!p99.points.empty()) c.lines.push_back(std::move(p99));
  return render(c);
}

std::string percentile_chart(const scenario& s) {
  if (!s.result || s.result->latency_us.empty()) {
    return missing("No summary latency: no percentiles.");
  }
  bar_chart c{"percentiles-" + s.id, "Request latency over the run", "latency", format_duration_us,
              {}, {}, false};
  for (const auto& [label, v] : s.result->latency_us) c.groups.push_back({label, {v}, ""});
  return render(c);
}

std::string histogram(const scenario& s) {
  if (!s.result || s.result->histogram.empty()) return missing("No latency histogram.");
  histogram_chart c{"histogram-" + s.id,   "Request latency histogram (log scale)",
                    "latency (log scale)", "requests",
                    format_duration_us,    s.result->histogram};
  return render(c);
}

std::string stages_chart(const scenario& s) {
  if (!s.stages) return missing("No stage breakdown (kassa-bench was run without --metrics).");
  if (s.stages->empty()) return missing("The stages line lists no stage.");
  bar_chart c{"stages-" + s.id, "kassad stages: mean and p99", "latency per stage",
              format_duration_us, {"mean", "p99"}, {}, false};
  for (const stage& st : *s.stages) c.groups.push_back({st.name, {st.mean_us, st.p99_us}, ""});
  return render(c);
}

std::string stages_share_chart(const scenario& s) {
  if (!s.stages || s.stages->empty()) return "";
  stacked_bar c{"shares-" + s.id, "Where a request's time in kassad goes (mean per stage)",
                format_duration_us, {}};
  for (const stage& st : *s.stages) c.parts.push_back({st.name, st.mean_us});
  return render(c);
}

std::string stages_table(const scenario& s) {
  if (!s.stages || s.stages->empty()) return "";
  double total = 0;
  for (const stage& st : *s.stages) {
    if (known(st.mean_us)) total += st.mean_us;
  }
  std::string out = "<div><h3>Stages</h3>\n<table id=\"stage-table-" + s.id + "\">\n<tr>" +
                    header_cell("stage") + header_cell("count", true) + header_cell("mean", true) +
                    header_cell("p50", true) + header_cell("p99", true) +
                    header_cell("share of the mean", true) + "</tr>\n";
  for (const stage& st : *s.stages) {
    char share[32] = "";
    if (known(st.mean_us) && total > 0) {
      std::snprintf(share, sizeof share, "%.1f%%", 100 * st.mean_us / total);
    }
    out += "<tr>" + cell(st.name) + cell(figure(st.count, format_grouped), true) +
           cell(figure(st.mean_us, format_duration_us), true) +
           cell(figure(st.p50_us, format_duration_us), true) +
           cell(figure(st.p99_us, format_duration_us), true) + cell(share, true) + "</tr>\n";
  }
  out += "</table>\n";
  if (!s.stages_source.empty()) {
    out += "<p class=\"meta\">From <span class=\"mono\">" + esc(s.stages_source) + "</span></p>\n";
  }
  return out + "</div>\n";
}

std::string counts_table(const std::string& id, const std::string& title, const std::string& what,
                         const std::vector<named_count>& counts) {
  double total = 0;
  for (const named_count& c : counts) total += c.count;
  std::string out = "<div><h3>" + esc(title) + "</h3>\n";
  if (counts.empty()) return out + missing("None.") + "</div>\n";
  out += "<table id=\"" + id + "\">\n<tr>" + header_cell(what) + header_cell("count", true) +
         header_cell("share", true) + "</tr>\n";
  for (const named_count& c : counts) {
    char share[32] = "";
    if (total > 0) std::snprintf(share, sizeof share, "%.2f%%", 100 * c.count / total);
    out += "<tr>" + cell(c.name) + cell(format_grouped(c.count), true) + cell(share, true) +
           "</tr>\n";
  }
  return out + "</table>\n</div>\n";
}

std::string summary_table(const scenario& s) {
  if (!s.result) return missing("No summary line: the run may not have finished.");
  const summary& r = *s.result;
  std::string out = "<div><h3>Summary</h3>\n<table id=\"summary-" + s.id + "\">\n";
  out += fact("requests", figure(r.requests, format_grouped));
  out += fact("events", figure(r.events, format_grouped));
  out += fact("events/s", figure(r.events_per_s, format_grouped));
  out += fact("requests/s", figure(r.requests_per_s, format_grouped));
  for (const auto& [label, v] : r.latency_us) {
    out += fact("latency " + label, format_duration_us(v));
  }
  out += fact("latency mean", figure(r.mean_us, format_duration_us));
  return out + "</table>\n</div>\n";
}

std::string scenario_section(const scenario& s) {
  std::string kind = s.run ? text_of(*s.run, "kind") : "";
  std::string out = "<section class=\"scenario\" id=\"scenario-" + s.id + "\">\n<h2>" + esc(s.name);
  if (!kind.empty()) out += "<span class=\"kind\">" + esc(kind) + "</span>";
  out += "</h2>\n<div class=\"head\">\n" + run_header(s) + "</div>\n";
  out += "<div class=\"charts\">\n" + throughput_chart(s) + latency_time_chart(s) +
         percentile_chart(s) + histogram(s) + stages_chart(s) + stages_share_chart(s) + "</div>\n";
  out += "<div class=\"tables\">\n" + summary_table(s) + stages_table(s);
  if (s.result) {
    out += counts_table("results-" + s.id, "Results by code", "result", s.result->results);
    out += counts_table("errors-" + s.id, "Request errors", "status", s.result->request_errors);
    if (!s.result->commands.empty()) {
      out += counts_table("commands-" + s.id, "Payment commands sent", "command",
                          s.result->commands);
    }
  }
  return out + "</div>\n</section>\n";
}

std::string comparison_section(const comparison& c) {
  std::string out = "<section class=\"compare\" id=\"section-" + c.id +
                    "\">\n<h2>kassa against the PostgreSQL peer</h2>\n<table class=\"run\">\n" +
                    fact("machine", c.machine) + fact("command", c.command, true) + "</table>\n";
  if (c.rows.empty()) return out + missing("The compare line has no rows.") + "</section>\n";
  bar_chart chart{c.id, "Throughput: kassa and PostgreSQL (log scale)", "per second (log scale)",
                  format_count, {"kassa", "PostgreSQL"}, {}, true};
  for (const compare_row& r : c.rows) {
    // Rows without a kassa figure (a ratio of kassa to itself, a memory figure) are in the
    // table only.
    if (!known(r.kassa_per_s)) continue;
    chart.groups.push_back(
        {r.workload, {r.kassa_per_s, r.peer_per_s}, figure(r.ratio, format_ratio)});
  }
  out += "<div class=\"charts\">\n" + render(chart) + "</div>\n";
  out += "<table id=\"" + c.id + "-table\">\n<tr>" + header_cell("workload") +
         header_cell("kassa/s", true) + header_cell("PostgreSQL/s", true) +
         header_cell("ratio", true) + header_cell("target") + header_cell("met") +
         header_cell("kassa p99", true) + "</tr>\n";
  for (const compare_row& r : c.rows) {
    std::string met = !r.met ? "<td>n/a</td>"
                      : *r.met ? "<td class=\"met\">✓ met</td>"
                               : "<td class=\"missed\">✗ missed</td>";
    out += "<tr>" + cell(r.workload) + cell(figure(r.kassa_per_s, format_grouped), true) +
           cell(figure(r.peer_per_s, format_grouped), true) +
           cell(figure(r.ratio, format_ratio), true) + cell(r.target) + met +
           cell(figure(r.p99_us, format_duration_us), true) + "</tr>\n";
  }
  return out + "</table>\n</section>\n";
}

std::string overview(const model& m) {
  std::string out = "<table id=\"overview\">\n<tr>" + header_cell("scenario") +
                    header_cell("kind") + header_cell("seconds", true) +
                    header_cell("events/s", true) + header_cell("requests/s", true) +
                    header_cell("p50", true) +
                    header_cell("p99", true) + header_cell("max", true) +
                    header_cell("request errors", true) + "</tr>\n";
  for (const scenario& s : m.scenarios) {
    std::string row = "<tr><td><a href=\"#scenario-" + s.id + "\">" + esc(s.name) + "</a></td>" +
                      cell(s.run ? text_of(*s.run, "kind") : "");
    if (!s.result) {
      out += row + "<td colspan=\"7\" class=\"missing\">no summary</td></tr>\n";
      continue;
    }
    const summary& r = *s.result;
    auto latency = [&](const char* label) {
      for (const auto& [l, v] : r.latency_us) {
        if (l == label) return format_duration_us(v);
      }
      return std::string();
    };
    double errors = 0;
    for (const named_count& e : r.request_errors) errors += e.count;
    out += row + cell(figure(r.seconds, format_seconds), true) +
           cell(figure(r.events_per_s, format_count), true) +
           cell(figure(r.requests_per_s, format_count), true) + cell(latency("p50"), true) +
           cell(latency("p99"), true) + cell(latency("max"), true) +
           cell(format_grouped(errors), true) + "</tr>\n";
  }
  return out + "</table>\n";
}

std::string notes_section(const std::vector<std::string>& notes) {
  const size_t shown_max = 50;
  if (notes.empty()) return "";
  std::string out = "<section class=\"notes\" id=\"notes\">\n<p>" + std::to_string(notes.size()) +
                    (notes.size() == 1 ? " problem" : " problems") +
                    " in the input (those lines or parts were left out):</p>\n<ul>\n";
  for (size_t i = 0; i < notes.size() && i < shown_max; ++i) {
    out += "<li>" + esc(notes[i]) + "</li>\n";
  }
  if (notes.size() > shown_max) {
    out += "<li>and " + std::to_string(notes.size() - shown_max) + " more</li>\n";
  }
  return out + "</ul>\n</section>\n";
}

} // namespace

std::string render_report(const input& in) {
  model m = collect(in);
  std::set<std::string> machines;
  std::string started;
  for (const scenario& s : m.scenarios) {
    if (!s.run) continue;
    std::string machine = text_of(*s.run, "machine"), at = text_of(*s.run, "started_utc");
    if (!machine.empty()) machines.insert(machine);
    if (!at.empty() && (started.empty() || at < started)) started = at;
  }
  for (const comparison& c : m.comparisons) {
    if (!c.machine.empty()) machines.insert(c.machine);
  }

  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<title>kassa benchmark report</title>\n<style>" +
                    std::string(style) + "</style>\n</head>\n<body>\n<header>\n"
                    "<h1>kassa benchmark report</h1>\n<p class=\"meta\">";
  out += std::to_string(m.scenarios.size());
  out += m.scenarios.size() == 1 ? " scenario" : " scenarios";
  if (!m.comparisons.empty()) out += ", " + std::to_string(m.comparisons.size()) + " comparison";
  out += " from " + std::to_string(m.lines_used) + " result lines";
  if (!started.empty()) out += "; first started " + esc(started);
  out += "</p>\n";
  if (!machines.empty()) {
    out += "<table id=\"machines\">\n";
    for (const std::string& machine : machines) out += fact("machine", machine);
    out += "</table>\n";
  }
  out += "</header>\n" + notes_section(m.notes);

  if (m.scenarios.empty() && m.comparisons.empty()) {
    out += "<p id=\"no-data\" class=\"missing\">No data: the input holds no benchmark result "
           "lines.</p>\n";
  } else {
    out += "<nav>";
    for (const scenario& s : m.scenarios) {
      out += "<a href=\"#scenario-" + s.id + "\">" + esc(s.name) + "</a>";
    }
    for (const comparison& c : m.comparisons) {
      out += "<a href=\"#section-" + c.id + "\">kassa vs PostgreSQL</a>";
    }
    out += "</nav>\n";
    if (!m.scenarios.empty()) out += overview(m);
    for (const scenario& s : m.scenarios) out += scenario_section(s);
    for (const comparison& c : m.comparisons) out += comparison_section(c);
  }
  out += "<footer>Made by kassa-report from kassa-bench results. Latency is a request's, from "
         "its (scheduled) send to its reply. No script: the charts are inline SVG.</footer>\n"
         "</body>\n</html>\n";
  return out;
}

std::string render_report(const std::vector<json>& lines) {
  input in;
  in.lines = lines;
  return render_report(in);
}

} // namespace kassa::report
