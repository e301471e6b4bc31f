#include "perf/report/chart.hpp"

#include "perf/report/format.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kassa::report {

namespace {

const char* const palette[] = {"#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d69e2e", "#e53e3e"};
constexpr int palette_size = sizeof palette / sizeof palette[0];
constexpr double chart_width = 620;
constexpr size_t label_bytes_max = 28;

const char* colour(size_t i) { return palette[i % palette_size]; }

// A coordinate in pixels, one decimal.
std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// The plot area inside the chart, in pixels.
struct area {
  double left;
  double top;
  double right;
  double bottom;
};

// Maps a value of a linear or log axis onto [from, to] pixels.
struct scale {
  double lo;
  double hi;
  bool log;
  double from;
  double to;

  double operator()(double v) const {
    double f = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                   : (v - lo) / (hi - lo);
    return from + std::clamp(f, 0.0, 1.0) * (to - from);
  }
};

// At most `bytes_max` bytes of `label` (not splitting a UTF-8 character), with an ellipsis
// when cut.
std::string shorten(const std::string& label, size_t bytes_max) {
  if (label.size() <= bytes_max) return label;
  size_t cut = bytes_max - 1;
  while (cut > 0 && (static_cast<unsigned char>(label[cut]) & 0xC0) == 0x80) --cut;
  return label.substr(0, cut) + "…";
}

std::string text(double x, double y, const std::string& content, const char* cls,
                 const char* anchor = "start") {
  return "<text class=\"" + std::string(cls) + "\" x=\"" + px(x) + "\" y=\"" + px(y) +
         "\" text-anchor=\"" + anchor + "\">" + escape_html(content) + "</text>\n";
}

std::string line(double x1, double y1, double x2, double y2, const char* cls) {
  return "<line class=\"" + std::string(cls) + "\" x1=\"" + px(x1) + "\" y1=\"" + px(y1) +
         "\" x2=\"" + px(x2) + "\" y2=\"" + px(y2) + "\"/>\n";
}

// The <svg> element around `body`, with the count of marks drawn.
std::string wrap(const std::string& id, const std::string& title, double height, size_t marks,
                 const std::string& body) {
  std::string h = px(height);
  return "<svg id=\"" + escape_html(id) + "\" class=\"chart\" data-points=\"" +
         std::to_string(marks) + "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
         px(chart_width) + "\" height=\"" + h + "\" viewBox=\"0 0 " + px(chart_width) + " " + h +
         "\" role=\"img\" aria-label=\"" + escape_html(title) + "\">\n<title>" +
         escape_html(title) + "</title>\n" + text(8, 18, title, "chart-title") + body + "</svg>\n";
}

// Legend entries in one row at the top right.
std::string legend(const std::vector<std::string>& names, double right) {
  if (names.size() < 2) return "";
  std::string out;
  double x = right;
  for (size_t i = names.size(); i-- > 0;) {
    std::string name = shorten(names[i], 20);
    x -= 24 + 7.0 * double(name.size());
    out += "<rect class=\"legend\" x=\"" + px(x) +
           "\" y=\"10\" width=\"10\" height=\"10\" fill=\"" + colour(i) + "\"/>\n" +
           text(x + 14, 19, name, "legend-label");
  }
  return out;
}

// Grid lines and labels of a vertical value axis.
std::string y_axis(const ticks& t, const scale& y, const area& a, formatter format,
                   const std::string& label) {
  std::string out;
  for (double v : t.values) {
    out += line(a.left, y(v), a.right, y(v), "grid");
    out += text(a.left - 6, y(v) + 4, format(v), "tick", "end");
  }
  out += line(a.left, a.top, a.left, a.bottom, "axis");
  double mid = (a.top + a.bottom) / 2;
  out += "<text class=\"axis-label\" x=\"14\" y=\"" + px(mid) + "\" text-anchor=\"middle\" "
         "transform=\"rotate(-90 14 " + px(mid) + ")\">" + escape_html(label) + "</text>\n";
  return out;
}

// Tick marks and labels of a horizontal axis along the bottom of `a`.
std::string x_axis(const ticks& t, const scale& x, const area& a, formatter format,
                   const std::string& label) {
  std::string out = line(a.left, a.bottom, a.right, a.bottom, "axis");
  for (double v : t.values) {
    out += line(x(v), a.bottom, x(v), a.bottom + 4, "axis");
    out += text(x(v), a.bottom + 16, format(v), "tick", "middle");
  }
  out += text((a.left + a.right) / 2, a.bottom + 32, label, "axis-label", "middle");
  return out;
}

} // namespace

std::string render(const line_chart& chart) {
  const double height = 280;
  area a{70, 36, chart_width - 20, height - 44};
  double x_min = 0, x_max = -INFINITY, y_min = 0, y_max = -INFINITY;
  for (const series& s : chart.lines) {
    for (auto [x, y] : s.points) {
      x_min = std::min(x_min, x), x_max = std::max(x_max, x);
      y_min = std::min(y_min, y), y_max = std::max(y_max, y);
    }
  }
  for (const reference_line& r : chart.references) {
    if (std::isfinite(r.y)) y_min = std::min(y_min, r.y), y_max = std::max(y_max, r.y);
  }
  if (x_max == -INFINITY) x_max = 1, y_max = 1; // no points
  ticks xt = linear_ticks(x_min, x_max, 8);
  ticks yt = linear_ticks(y_min, std::max(y_max, y_min), 5);
  scale x{xt.lo, xt.hi, false, a.left, a.right};
  scale y{yt.lo, yt.hi, false, a.bottom, a.top};

  std::string body = y_axis(yt, y, a, chart.y_format, chart.y_label) +
                     x_axis(xt, x, a, chart.x_format, chart.x_label);
  std::vector<std::string> names;
  for (const series& s : chart.lines) names.push_back(s.name);
  body += legend(names, a.right);
  if (!chart.caption.empty()) body += text(a.right, 18, chart.caption, "caption", "end");
  for (const reference_line& r : chart.references) {
    if (!std::isfinite(r.y)) continue;
    body += "<line class=\"reference\" x1=\"" + px(a.left) + "\" y1=\"" + px(y(r.y)) + "\" x2=\"" +
            px(a.right) + "\" y2=\"" + px(y(r.y)) + "\"><title>" + escape_html(r.label) +
            "</title></line>\n" + text(a.left + 4, y(r.y) - 4, r.label, "reference-label");
  }
  size_t marks = 0;
  for (size_t i = 0; i < chart.lines.size(); ++i) {
    const series& s = chart.lines[i];
    std::string points;
    for (auto [vx, vy] : s.points) points += px(x(vx)) + "," + px(y(vy)) + " ";
    body += "<polyline class=\"series\" fill=\"none\" stroke=\"" + std::string(colour(i)) +
            "\" points=\"" + points + "\"/>\n";
    const char* radius = s.points.size() > 120 ? "1.5" : "3";
    for (size_t p = 0; p < s.points.size(); ++p) {
      auto [vx, vy] = s.points[p];
      std::string tip = p < s.tips.size()
                            ? s.tips[p]
                            : s.name + " at " + chart.x_format(vx) + ": " + chart.y_format(vy);
      body += "<circle class=\"pt\" cx=\"" + px(x(vx)) + "\" cy=\"" + px(y(vy)) + "\" r=\"" +
              radius + "\" fill=\"" + colour(i) + "\"><title>" + escape_html(tip) +
              "</title></circle>\n";
      ++marks;
    }
  }
  return wrap(chart.id, chart.title, height, marks, body);
}

std::string render(const bar_chart& chart) {
  const double bar_height = 14, group_gap = 10;
  size_t per_group = std::max<size_t>(chart.series_names.size(), 1);
  double group_height = double(per_group) * bar_height + group_gap;
  double height = 36 + double(chart.groups.size()) * group_height + 44;
  bool notes = std::any_of(chart.groups.begin(), chart.groups.end(),
                           [](const bar_group& g) { return !g.note.empty(); });
  area a{190, 36, chart_width - (notes ? 130 : 80), height - 44};

  double v_min = INFINITY, v_max = 0;
  for (const bar_group& g : chart.groups) {
    for (double v : g.values) {
      if (!std::isfinite(v) || (chart.log_scale && v <= 0)) continue;
      v_min = std::min(v_min, v), v_max = std::max(v_max, v);
    }
  }
  ticks t = chart.log_scale ? log_ticks(v_min, v_max) : linear_ticks(0, v_max, 6);
  scale x{t.lo, t.hi, chart.log_scale, a.left, a.right};

  std::string body;
  for (double v : t.values) body += line(x(v), a.top, x(v), a.bottom, "grid");
  body += x_axis(t, x, a, chart.value_format, chart.x_label);
  body += line(a.left, a.top, a.left, a.bottom, "axis");
  body += legend(chart.series_names, chart_width - 20);
  size_t marks = 0;
  for (size_t gi = 0; gi < chart.groups.size(); ++gi) {
    const bar_group& g = chart.groups[gi];
    double top = a.top + group_gap / 2 + double(gi) * group_height;
    body += "<text class=\"bar-label\" x=\"" + px(a.left - 8) + "\" y=\"" +
            px(top + double(per_group) * bar_height / 2 + 4) + "\" text-anchor=\"end\"><title>" +
            escape_html(g.label) + "</title>" + escape_html(shorten(g.label, label_bytes_max)) +
            "</text>\n";
    if (!g.note.empty()) {
      body += text(chart_width - 8, top + double(per_group) * bar_height / 2 + 4, g.note,
                   "bar-note", "end");
    }
    for (size_t si = 0; si < g.values.size(); ++si) {
      double v = g.values[si];
      if (!std::isfinite(v) || (chart.log_scale && v <= 0)) continue;
      double y = top + double(si) * bar_height;
      double w = std::max(1.0, x(std::max(v, t.lo)) - a.left);
      std::string what = g.label;
      if (si < chart.series_names.size()) what += ", " + chart.series_names[si];
      body += "<rect class=\"pt\" x=\"" + px(a.left) + "\" y=\"" + px(y) + "\" width=\"" + px(w) +
              "\" height=\"" + px(bar_height - 2) + "\" fill=\"" + colour(si) + "\"><title>" +
              escape_html(what + ": " + chart.value_format(v)) + "</title></rect>\n";
      body += text(a.left + w + 4, y + bar_height - 4, chart.value_format(v), "bar-value");
      ++marks;
    }
  }
  return wrap(chart.id, chart.title, height, marks, body);
}

std::string render(const stacked_bar& chart) {
  const double per_row = 3, row_height = 18, bar_top = 32, bar_height = 26;
  double total = 0;
  std::vector<std::pair<std::string, double>> parts;
  for (const auto& [name, v] : chart.parts) {
    if (std::isfinite(v) && v > 0) parts.push_back({name, v}), total += v;
  }
  double rows = std::ceil(double(parts.size()) / per_row);
  double height = bar_top + bar_height + 14 + rows * row_height + 6;
  area a{20, bar_top, chart_width - 20, bar_top + bar_height};

  std::string body;
  size_t marks = 0;
  double x = a.left;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& [name, v] = parts[i];
    double share = v / total;
    double w = std::max(1.0, share * (a.right - a.left));
    char percent[32];
    std::snprintf(percent, sizeof percent, "%.1f%%", 100 * share);
    body += "<rect class=\"pt\" x=\"" + px(x) + "\" y=\"" + px(a.top) + "\" width=\"" + px(w) +
            "\" height=\"" + px(bar_height) + "\" fill=\"" + colour(i) + "\"><title>" +
            escape_html(name + ": " + chart.value_format(v) + " (" + percent + ")") +
            "</title></rect>\n";
    if (w > 44) { // room for the share inside the bar
      body += text(x + w / 2, a.top + bar_height / 2 + 4, percent, "bar-inside", "middle");
    }
    x += w;
    ++marks;

    double lx = a.left + double(i % size_t(per_row)) * (a.right - a.left) / per_row;
    double ly = a.bottom + 14 + double(i / size_t(per_row)) * row_height;
    body += "<rect class=\"legend\" x=\"" + px(lx) + "\" y=\"" + px(ly) +
            "\" width=\"10\" height=\"10\" fill=\"" + colour(i) + "\"/>\n" +
            text(lx + 14, ly + 9,
                 shorten(name, 24) + " " + chart.value_format(v) + " (" + percent + ")",
                 "legend-label");
  }
  return wrap(chart.id, chart.title, height, marks, body);
}

std::string render(const histogram_chart& chart) {
  const double height = 280;
  area a{70, 36, chart_width - 20, height - 44};
  double lo = INFINITY, hi = 0, count_max = 0;
  for (const histogram_bin& b : chart.bins) {
    lo = std::min(lo, b.lo), hi = std::max(hi, b.hi), count_max = std::max(count_max, b.count);
  }
  ticks xt = log_ticks(lo, hi);
  ticks yt = linear_ticks(0, count_max, 5);
  scale x{xt.lo, xt.hi, true, a.left, a.right};
  scale y{yt.lo, yt.hi, false, a.bottom, a.top};

  std::string body = y_axis(yt, y, a, format_count, chart.y_label) +
                     x_axis(xt, x, a, chart.x_format, chart.x_label);
  size_t marks = 0;
  for (const histogram_bin& b : chart.bins) {
    double left = x(b.lo), top = std::min(y(b.count), a.bottom - 1);
    double w = std::max(1.0, x(b.hi) - left - 1);
    body += "<rect class=\"pt\" x=\"" + px(left) + "\" y=\"" + px(top) + "\" width=\"" + px(w) +
            "\" height=\"" + px(a.bottom - top) + "\" fill=\"" + colour(0) + "\"><title>" +
            escape_html(chart.x_format(b.lo) + " – " + chart.x_format(b.hi) + ": " +
                        format_grouped(b.count)) +
            "</title></rect>\n";
    ++marks;
  }
  return wrap(chart.id, chart.title, height, marks, body);
}

} // namespace kassa::report
