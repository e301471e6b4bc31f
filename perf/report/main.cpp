// kassa-report: kassa-bench's JSON lines results -> one self-contained HTML page.
//   kassa-report IN.jsonl [IN2.jsonl ...] [--out report.html]
// "-" reads standard input; without --out the page goes to standard output.
// Exit status: 0 written, 2 bad arguments or unreadable input, 1 the output could not be written
// (or rendering failed).
#include "perf/report/report.hpp"

#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>

namespace {

int usage(const char* why) {
  std::cerr << "kassa-report: " << why << "\n"
            << "usage: kassa-report RESULTS.jsonl [MORE.jsonl ...] [--out REPORT.html]\n";
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> inputs;
  std::string out_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--out" || arg == "-o") {
      if (i + 1 >= argc) return usage("--out needs a file name");
      out_path = argv[++i];
    } else if (arg.rfind("--out=", 0) == 0) {
      out_path = arg.substr(6);
    } else if (arg == "--help" || arg == "-h") {
      usage("renders kassa-bench results as an HTML page");
      return 0;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return usage(("unknown option " + arg).c_str());
    } else {
      inputs.push_back(arg);
    }
  }
  if (inputs.empty()) return usage("no results file given");

  kassa::report::input in;
  for (const std::string& path : inputs) {
    if (path == "-") {
      kassa::report::read_json_lines(std::cin, "stdin", in);
      continue;
    }
    std::ifstream file(path);
    if (!file) {
      std::cerr << "kassa-report: cannot read " << path << ": " << std::strerror(errno) << "\n";
      return 2;
    }
    kassa::report::read_json_lines(file, path, in);
    if (file.bad()) {
      std::cerr << "kassa-report: reading " << path << " failed: " << std::strerror(errno) << "\n";
      return 2;
    }
  }
  std::string page;
  try {
    page = kassa::report::render_report(in);
  } catch (const std::exception& e) { // a bug, not bad input: that only makes notes
    std::cerr << "kassa-report: rendering failed: " << e.what() << "\n";
    return 1;
  }
  if (out_path.empty() || out_path == "-") {
    std::cout << page;
    return std::cout.flush() ? 0 : 1;
  }
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  out << page;
  out.close();
  if (!out) {
    std::cerr << "kassa-report: cannot write " << out_path << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  std::cerr << "kassa-report: " << in.lines.size() << " lines -> " << out_path << "\n";
  return 0;
}
