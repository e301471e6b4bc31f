#include "perf/report/format.hpp"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace kassa::report {

std::string escape_html(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    case '\'': out += "&#39;"; break;
    case '\t': case '\n': case '\r': out += c; break;
    default:
      // Other control characters (a NUL, say) are not allowed in HTML text or in XML.
      if (static_cast<unsigned char>(c) < 0x20) {
        out += "\uFFFD";
      } else {
        out += c;
      }
    }
  }
  return out;
}

namespace {

// `value` (>= 0) with three significant digits, trailing zeros dropped: 2.47, 12.5, 850.
std::string three_digits(double value) {
  int decimals = value >= 100 ? 0 : value >= 10 ? 1 : value >= 1 ? 2 : 3;
  char buf[400];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

// Rounds `value` to what three_digits prints, so that 999.7 counts as 1000 when picking a unit.
double rounded(double value) {
  int decimals = value >= 100 ? 0 : value >= 10 ? 1 : value >= 1 ? 2 : 3;
  double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

// Scales `magnitude` down by `step` while it is at least `step` and a larger unit remains.
std::string scaled(double value, const double* steps, const char* const* units, int unit_count) {
  if (!std::isfinite(value)) return "n/a";
  std::string sign = value < 0 ? "-" : "";
  double magnitude = std::fabs(value);
  int unit = 0;
  while (unit + 1 < unit_count && rounded(magnitude) >= steps[unit]) {
    magnitude /= steps[unit];
    ++unit;
  }
  return sign + three_digits(magnitude) + units[unit];
}

} // namespace

std::string format_count(double value) {
  static const double steps[] = {1e3, 1e3, 1e3};
  static const char* const units[] = {"", "k", "M", "G"};
  return scaled(value, steps, units, 4);
}

std::string format_duration_us(double us) {
  if (us == 0) return "0";
  static const double steps[] = {1e3, 1e3};
  static const char* const units[] = {" µs", " ms", " s"};
  return scaled(us, steps, units, 3);
}

std::string format_grouped(double value) {
  if (!std::isfinite(value)) return "n/a";
  char buf[400]; // up to 309 digits
  std::snprintf(buf, sizeof buf, "%.0f", std::fabs(value));
  std::string digits = buf;
  std::string out = value < 0 && digits != "0" ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string format_ratio(double ratio) {
  if (!std::isfinite(ratio)) return "n/a";
  char buf[400];
  std::snprintf(buf, sizeof buf, "%.1f×", ratio);
  return buf;
}

std::string format_seconds(double s) {
  if (!std::isfinite(s)) return "n/a";
  return three_digits(std::fabs(s)).insert(0, s < 0 ? "-" : "") + " s";
}

std::string slug(const std::string& name) {
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c) && c < 0x80) {
      out += char(std::tolower(c));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "scenario" : out;
}

namespace {

// The smallest 1, 2 or 5 times a power of ten that is at least `raw` (> 0).
double nice_step(double raw) {
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * power >= raw * (1 - 1e-9)) return m * power;
  }
  return 10 * power;
}

} // namespace

ticks linear_ticks(double lo, double hi, int count_max) {
  assert(count_max >= 2);
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  // Far inside the range of double, so that hi - lo stays finite.
  lo = std::clamp(lo, -1e300, 1e300);
  hi = std::clamp(hi, -1e300, 1e300);
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    double pad = lo == 0 ? 1 : std::fabs(lo) * 0.5;
    if (lo >= 0 && lo - pad < 0) {
      hi = lo + pad;
      lo = 0;
    } else {
      lo -= pad;
      hi += pad;
    }
  }
  double step = nice_step((hi - lo) / count_max);
  ticks t;
  t.lo = std::floor(lo / step + 1e-9) * step;
  t.hi = std::ceil(hi / step - 1e-9) * step;
  int n = int(std::llround((t.hi - t.lo) / step));
  for (int i = 0; i <= n; ++i) {
    double v = t.lo + i * step;
    if (std::fabs(v) < step * 1e-9) v = 0; // no -0 or 1e-17 from the sums
    t.values.push_back(v);
  }
  return t;
}

ticks log_ticks(double lo, double hi) {
  if (!(lo > 0) || !std::isfinite(lo)) lo = 1;
  if (!(hi > 0) || !std::isfinite(hi) || hi < lo) hi = lo;
  int first = int(std::floor(std::log10(lo) + 1e-9));
  int last = int(std::ceil(std::log10(hi) - 1e-9));
  if (last == first) ++last;
  first = std::max(first, last - 30); // an axis of 30 decades is already unreadable
  ticks t;
  t.lo = std::pow(10.0, first);
  t.hi = std::pow(10.0, last);
  bool minor = last - first <= 3;
  for (int k = first; k <= last; ++k) {
    double power = std::pow(10.0, k);
    t.values.push_back(power);
    if (minor && k < last) {
      t.values.push_back(2 * power);
      t.values.push_back(5 * power);
    }
  }
  return t;
}

} // namespace kassa::report
