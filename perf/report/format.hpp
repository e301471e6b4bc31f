#pragma once
// How the report prints numbers and text: counts with k/M/G, durations in µs/ms/s, axis ticks
// on 1-2-5 steps, and HTML escaping of every string that came from the input.
#include <string>
#include <vector>

namespace kassa::report {

// &, <, >, " and ' as entities, other control characters than tab and line ends as U+FFFD:
// safe in element text and in quoted attribute values, of HTML and of XML (the SVG).
std::string escape_html(const std::string& text);

// Three significant digits and a unit prefix: 950, 1.23k, 2.47M, 3G; "n/a" if not finite.
std::string format_count(double value);
// A duration given in microseconds: 850 µs, 4.1 ms, 1.25 s.
std::string format_duration_us(double us);
// A whole number with thousands separators: 2,468,000.
std::string format_grouped(double value);
// 44.3×
std::string format_ratio(double ratio);
// Seconds on a time axis: 0 s, 2.5 s, 90 s.
std::string format_seconds(double s);

// A name made safe for an element id: "uniform, durable" -> "uniform-durable".
std::string slug(const std::string& name);

// Tick values of a linear axis covering [lo, hi] in 1-2-5 steps, at most about `count_max`
// of them; `lo` and `hi` of the result are the first and last tick.
struct ticks {
  double lo;
  double hi;
  std::vector<double> values;
};
ticks linear_ticks(double lo, double hi, int count_max);
// Ticks of a log axis: the axis runs from the power of ten at or below `lo` to the one at or
// above `hi`, ticks at 1, 2 and 5 times each power (only the powers when that is too many).
ticks log_ticks(double lo, double hi);

} // namespace kassa::report
