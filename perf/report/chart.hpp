#pragma once
// Inline SVG charts: a line chart, horizontal (grouped) bars, one stacked bar, and a histogram
// on a log axis.
// Every data mark has class "pt" and a <title> tooltip; the <svg> carries class "chart", the id
// given, and data-points = the number of marks drawn, so a reader (or a test) can count them.
// All text is escaped here; callers pass plain strings.
#include <string>
#include <utility>
#include <vector>

namespace kassa::report {

using formatter = std::string (*)(double);

struct series {
  std::string name;
  std::vector<std::pair<double, double>> points; // (x, y), finite
  std::vector<std::string> tips;                 // a tooltip per point (else "name at x: y")
};

// A dashed horizontal line across the plot, labelled at its right end.
struct reference_line {
  std::string label;
  double y;
};

// Both axes start at 0 (time from the start of the run, values from nothing).
struct line_chart {
  std::string id;
  std::string title;
  std::string x_label;
  std::string y_label;
  formatter x_format;
  formatter y_format;
  std::vector<series> lines; // one colour each, in order
  std::vector<reference_line> references = {};
  std::string caption = {}; // a remark at the top right, e.g. what was left out
};
std::string render(const line_chart& chart);

struct bar_group {
  std::string label;
  std::vector<double> values; // one per series; not finite = no bar
  std::string note;           // printed at the right end of the group, e.g. a ratio
};

struct bar_chart {
  std::string id;
  std::string title;
  std::string x_label;
  formatter value_format;
  std::vector<std::string> series_names; // a legend when more than one
  std::vector<bar_group> groups;         // top to bottom
  bool log_scale = false;                // bars of values <= 0 are left out on a log axis
};
std::string render(const bar_chart& chart);

// One bar split into the shares of its parts (e.g. the stages of a request), with a legend.
struct stacked_bar {
  std::string id;
  std::string title;
  formatter value_format;
  std::vector<std::pair<std::string, double>> parts; // parts that are not > 0 are left out
};
std::string render(const stacked_bar& chart);

struct histogram_bin {
  double lo; // bucket bounds, 0 < lo < hi
  double hi;
  double count;
};

struct histogram_chart {
  std::string id;
  std::string title;
  std::string x_label;
  std::string y_label;
  formatter x_format;
  std::vector<histogram_bin> bins;
};
std::string render(const histogram_chart& chart);

} // namespace kassa::report
