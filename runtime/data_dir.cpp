#include "runtime/data_dir.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <unistd.h>

namespace kassa::runtime {

namespace fs = std::filesystem;

std::string shard_path(const std::string& data_dir, uint32_t shard) {
  char name[32];
  std::snprintf(name, sizeof name, "shard-%03u", shard);
  return (fs::path(data_dir) / name).string();
}

std::vector<std::string> shard_paths_found(const std::string& data_dir) {
  std::error_code ec;
  if (fs::exists(fs::path(data_dir) / "data.mdb", ec)) return {data_dir};
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(data_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("shard-", 0) == 0) out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool make_directories(const std::string& path, std::string& error) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) {
    error = "cannot create directory " + path + ": " + ec.message();
    return false;
  }
  return true;
}

bool data_lock::acquire(const std::string& data_dir, std::string& error) {
  const std::string path = (fs::path(data_dir) / "LOCK").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    error = errno == EWOULDBLOCK
                ? "data directory " + data_dir + " is in use by another kassa process; stop it first"
                : "cannot lock " + path + ": " + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

data_lock::~data_lock() {
  if (fd_ >= 0) ::close(fd_); // closing releases the lock
}

} // namespace kassa::runtime
