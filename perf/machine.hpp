#pragma once
// One line describing the machine a benchmark ran on: CPU model, cores, kernel, memory.
#include <fstream>
#include <string>
#include <sys/utsname.h>
#include <thread>

namespace kassa::perf {

inline std::string machine_description() {
  std::string model = "unknown cpu";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::string mem_kib = "?";
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemTotal:", 0) == 0) {
      mem_kib = line.substr(9);
      mem_kib.erase(0, mem_kib.find_first_not_of(' '));
      break;
    }
  }
  utsname u{};
  uname(&u);
  return "machine: " + model + ", " + std::to_string(std::thread::hardware_concurrency()) +
         " cores, " + mem_kib + ", " + u.sysname + " " + u.release;
}

} // namespace kassa::perf
