#pragma once
// Child processes for end-to-end tests: start a program, read its output line by line with a
// deadline, signal it, and wait for its exit status with a deadline. Every wait is bounded.
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace kassa::test {

class process {
public:
  // Starts argv[0] with stdout and stderr both captured (merged, in order).
  explicit process(const std::vector<std::string>& argv) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      dup2(fds[1], STDERR_FILENO);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
  }
  ~process() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
  }
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& output() const { return buffer_; }

  // Reads until a line containing `text` appears; false on timeout or end of output.
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buffer_.find(text) == std::string::npos) {
      if (!read_some(deadline)) return buffer_.find(text) != std::string::npos;
    }
    return true;
  }

  void signal(int sig) { kill(pid_, sig); }

  // The exit status (or 128 + signal); -1 when it does not exit in time.
  int wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        while (read_some(std::chrono::steady_clock::now() + std::chrono::milliseconds(50))) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      read_some(std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
    }
    return -1;
  }

private:
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || out_ < 0) return false;
    pollfd p{out_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    ssize_t n = read(out_, buf, sizeof buf);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int out_ = -1;
  bool exited_ = false;
  std::string buffer_;
};

// Runs a program to completion and returns its exit status; `output` gets what it printed.
inline int run(const std::vector<std::string>& argv, std::string& output,
               std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  process p(argv);
  int status = p.wait(timeout);
  output = p.output();
  return status;
}

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class temp_dir {
public:
  temp_dir() {
    char tmpl[] = "/tmp/kassa-test.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::string out;
    run({"/bin/rm", "-rf", path_}, out);
  }
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

} // namespace kassa::test
