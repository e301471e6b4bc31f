#!/usr/bin/env python3
"""Runs every ```sh block of README.md and docs/*.md as a reader would type it.

Usage: docs_test.py --source DIR --build DIR [--verbose] [--keep] [--block-timeout-s N] [FILE...]
(FILE relative to --source; default: README.md and every docs/*.md)

Each file gets its own scratch directory that looks like a clone after a build: `build` is the
build directory, `config/` a copy of the repository's, the other files git tracks links to
the source.
The file's blocks run there in document order, each in a fresh `bash` with a timeout; files
stay (./data, keys, ...) from one block to the next, shell variables do not. A block passes
when every command in it exits 0, or with the status N its comment names (`# ..., exit N`).

Tags, an HTML comment on the line right before a block (invisible on the rendered page):
  <!-- docs-test: skip: REASON -->     the block is not run (it cannot run in a test)
  <!-- docs-test: servers: REASON -->  the block starts servers that run until stopped; the
      test starts the same ones itself: each `kassad ...` and `kassa-channel-sim ...` line with
      its arguments, and `export KASSA_ADDRESS=HOST:PORT` is set for the blocks that follow.
Every port of the copied config/*.yaml and of a config a block wrote for its kassad (and
`--port N`, `KASSA_ADDRESS`, kassa's default 127.0.0.1:3100) is mapped to a free loopback
port, so the test never meets a kassad the reader runs. `kassa`, `kassad`, `kassa-bench` and
`kassa-channel-sim` are on PATH, HOME is the scratch directory's home/. A failure names the
block's file:line, the failing command's file:line and the block's output. See tests/README.md.
"""

import argparse
import ctypes
import glob
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BLOCK_TIMEOUT_S = 60       # one block
SERVER_START_S = 30        # a server until it listens
TOTAL_BUDGET_S = 170       # the whole run; blocks after it fail
DEFAULT_PORT = 3100        # kassa's default address is 127.0.0.1:3100
SHELL_LANGS = {"sh"}
OTHER_SHELL_LANGS = {"bash", "shell", "console", "shell-session", "zsh"}
TAG = re.compile(r"^\s*<!--\s*docs-test:\s*(\w+)\s*:\s*(.*?)\s*-->\s*$")
FENCE_OPEN = re.compile(r"^(\s*)```\s*([\w+-]*)\s*$")
EXPECT_EXIT = re.compile(r"#.*\bexit (\d+)\b")
PORT_IN_CONFIG = re.compile(r"(\bport:\s*)(\d+)\b|((?:127\.0\.0\.1|localhost):)(\d+)\b")


class Block:
    def __init__(self, path, line, lang, text, tag, reason):
        self.path, self.line, self.lang, self.text = path, line, lang, text
        self.tag, self.reason = tag, reason

    def where(self):
        return f"{self.path}:{self.line}"


def parse(path, display):
    """The fenced blocks of a markdown file, with their tags; errors for misplaced tags."""
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, errors = [], []
    pending = None  # (tag, reason, line) of the tag on the previous line
    i = 0
    while i < len(lines):
        line = lines[i]
        m = TAG.match(line)
        if m:
            if m.group(1) not in ("skip", "servers") or not m.group(2):
                errors.append(f"{display}:{i + 1}: unknown tag or no reason: {line.strip()}")
            pending = (m.group(1), m.group(2), i + 1)
            i += 1
            continue
        if line.lstrip().startswith("<!--") and "docs-test" in line:
            errors.append(f"{display}:{i + 1}: malformed tag: {line.strip()}")
        f = FENCE_OPEN.match(line)
        if f:
            indent, lang = f.group(1), f.group(2)
            body, j = [], i + 1
            while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            tag, reason = (pending[0], pending[1]) if pending else (None, None)
            if lang in OTHER_SHELL_LANGS:
                errors.append(f"{display}:{i + 1}: a ```{lang} block: commands go in ```sh blocks, which this test runs")
            if pending and lang not in SHELL_LANGS:
                errors.append(f"{display}:{pending[2]}: a docs-test tag stands before a ```{lang} block")
            blocks.append(Block(display, i + 1, lang, "\n".join(body) + "\n", tag, reason))
            pending = None
            i = j + 1
            continue
        if pending and line.strip():
            errors.append(f"{display}:{pending[2]}: a docs-test tag must stand right before a ```sh block "
                          "(blank lines between are fine)")
            pending = None
        i += 1
    return [b for b in blocks if b.lang in SHELL_LANGS], errors


def logical_lines(text):
    """(first line number, joined text) of each command line, backslash continuations joined."""
    out, start, acc = [], None, ""
    for n, line in enumerate(text.split("\n"), 1):
        if start is None:
            start = n
        if line.endswith("\\"):
            acc += line[:-1] + " "
            continue
        out.append((start, acc + line))
        start, acc = None, ""
    return out


def die_with_parent():
    """In a child before exec: killed when the test dies, even by SIGKILL (a ctest timeout)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def tracked_entries(source):
    """The top-level files and folders of the repository, without what a reader's runs left
    there (build/, data/, keys/, ...), so the blocks write into the scratch directory only."""
    try:
        files = subprocess.run(["git", "-C", source, "ls-files"], check=True, capture_output=True,
                               text=True).stdout.split("\n")
        return sorted({f.split("/")[0] for f in files if f})
    except (OSError, subprocess.CalledProcessError):
        return [e for e in os.listdir(source)
                if e not in ("build", ".git") and not e.startswith(("build-", "data"))]


def free_ports(count):
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Scratch:
    """A clone-like directory for one file, its port map and the servers it started."""

    def __init__(self, source, build, keep):
        self.dir = tempfile.mkdtemp(prefix="kassa-docs-")
        self.keep = keep
        self.servers = []  # (name, Popen, log path)
        for entry in tracked_entries(source):
            if entry != "config":
                os.symlink(os.path.join(source, entry), os.path.join(self.dir, entry))
        os.symlink(os.path.abspath(build), os.path.join(self.dir, "build"))
        shutil.copytree(os.path.join(source, "config"), os.path.join(self.dir, "config"))
        os.makedirs(os.path.join(self.dir, "home"))
        os.makedirs(os.path.join(self.dir, ".docs-test"))
        self.ports = {}
        self.map_configs()
        self.env = dict(os.environ)
        for name in list(self.env):
            if name.startswith("KASSA_"):
                del self.env[name]
        bins = [os.path.join(self.dir, "build", d) for d in ("runtime", "channels/sim", "perf")]
        self.env["PATH"] = os.pathsep.join(bins + [self.env.get("PATH", "/usr/bin:/bin")])
        self.env["HOME"] = os.path.join(self.dir, "home")
        self.env["KASSA_ADDRESS"] = f"127.0.0.1:{self.port(DEFAULT_PORT)}"

    def port(self, doc_port):
        doc_port = int(doc_port)
        if doc_port == 0:
            return 0
        while doc_port not in self.ports:
            free = free_ports(1)[0]
            if free not in self.ports.values():
                self.ports[doc_port] = free
        return self.ports[doc_port]

    def map_configs(self):
        """Every port the copied configs name, mapped to a free loopback port."""
        self.mapped = set()
        self.port(DEFAULT_PORT)
        for path in sorted(glob.glob(os.path.join(self.dir, "config", "*.yaml"))):
            self.map_file(path)

    def map_file(self, path):
        """Rewrites the ports of a config in the scratch directory, once."""
        path = os.path.realpath(path)
        if path in self.mapped or not path.startswith(os.path.realpath(self.dir) + os.sep) \
                or not os.path.isfile(path):
            return
        self.mapped.add(path)
        text = open(path, encoding="utf-8").read()

        def sub(m):
            if m.group(1):
                return m.group(1) + str(self.port(m.group(2)))
            return m.group(3) + str(self.port(m.group(4)))

        open(path, "w", encoding="utf-8").write(PORT_IN_CONFIG.sub(sub, text))

    def map_address(self, address):
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"not HOST:PORT: {address}")
        return f"{host}:{self.port(port)}"

    def start_servers(self, block):
        """Starts what a `servers` block names; returns an error text or None."""
        for first, line in logical_lines(block.text):
            try:
                words = shlex.split(line, comments=True)
            except ValueError as e:
                return f"line {first}: {e}"
            if words and words[-1] == "&":
                words = words[:-1]
            if not words:
                continue
            name = os.path.basename(words[0])
            if name == "export" and len(words) == 2 and words[1].startswith("KASSA_ADDRESS="):
                self.env["KASSA_ADDRESS"] = self.map_address(words[1].split("=", 1)[1])
                continue
            if name == "kassad":
                config = "config/kassa.yaml"
                for k in range(1, len(words) - 1):
                    if words[k] == "--config":
                        config = words[k + 1]
                self.map_file(os.path.join(self.dir, config))  # one a block wrote
                error = self.start("kassad", [os.path.join(self.dir, "build/runtime/kassad")] + words[1:],
                                   ready=lambda log: re.search(r"msg=ready address=\S+:(\d+)", log))
            elif name == "kassa-channel-sim":
                args = list(words[1:])
                for k in range(len(args) - 1):
                    if args[k] == "--port":
                        args[k + 1] = str(self.port(args[k + 1]))
                error = self.start("kassa-channel-sim",
                                   [os.path.join(self.dir, "build/channels/sim/kassa-channel-sim")] + args,
                                   ready=lambda log: re.search(r"listening on 127\.0\.0\.1:(\d+)", log))
            else:
                error = ("a servers block holds only kassad and kassa-channel-sim lines and "
                         "`export KASSA_ADDRESS=HOST:PORT`")
            if error:
                return f"line {first}: {line.strip()}\n{error}"
        return None

    def start(self, name, argv, ready):
        log_path = os.path.join(self.dir, ".docs-test", f"{name}-{len(self.servers)}.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, cwd=self.dir, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=die_with_parent)
        self.servers.append((name, proc, log_path))
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            m = ready(open(log_path, errors="replace").read())
            if m and listening(int(m.group(1))):
                return None
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        status = "exited with status %s" % proc.returncode if proc.poll() is not None else \
            f"not listening after {SERVER_START_S} s"
        return f"{name} {status}:\n" + open(log_path, errors="replace").read()[-4000:]

    def exited(self):
        """The log tails of servers that are no longer running, to show beside a failure."""
        return "".join(f"\n{name} exited with status {proc.returncode}; its log ends:\n" +
                       open(log, errors="replace").read()[-2000:]
                       for name, proc, log in self.servers if proc.poll() is not None)

    def stop(self):
        for _, proc, _ in reversed(self.servers):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc, _ in reversed(self.servers):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


# Line 1 of every script: an ERR trap sees each failing command; a status its line's comment
# names (`# ..., exit N`) is expected, any other ends the block, and at exit an expected
# status that never came fails it. The block's own lines follow from line 2; messages name
# the command's line in the markdown file (__docs_at: the file and the fence's line).
PRELUDE = (
    "__docs_seen=' '; __docs_rc=0; "
    "__docs_err() { local rc=$1 line=$(($2 - 1)); "
    "if [ \"${__docs_expect[$line]:-0}\" = \"$rc\" ]; then __docs_seen+=\"$line \"; __docs_rc=$rc; return 0; fi; "
    "echo \"docs-test: $__docs_at$((__docs_fence + line)): exit status $rc\" >&2; trap - EXIT; exit 1; }; "
    "__docs_exit() { local rc=$? line; trap - ERR; "
    "if [ $rc -ne 0 ] && [ $rc -ne $__docs_rc ]; then exit $rc; fi; "
    "for line in \"${!__docs_expect[@]}\"; do case \"$__docs_seen\" in *\" $line \"*) ;; *) "
    "echo \"docs-test: $__docs_at$((__docs_fence + line)): exit status 0, its comment says exit ${__docs_expect[$line]}\" >&2; "
    "exit 1;; esac; done; exit 0; }; "
    "trap '__docs_err $? $LINENO' ERR; trap __docs_exit EXIT; "
    "__docs_at=%s; __docs_fence=%d; declare -A __docs_expect=(%s)\n"
)


def run_block(scratch, block, budget_end, block_timeout_s):
    expect = {}
    for first, line in logical_lines(block.text):
        m = EXPECT_EXIT.search(line)
        if m:
            expect[first] = m.group(1)
    script = PRELUDE % (shlex.quote(block.path + ":"), block.line,
                        " ".join(f"[{k}]={v}" for k, v in expect.items())) + block.text
    path = os.path.join(scratch.dir, ".docs-test", f"block-{block.line}.sh")
    open(path, "w", encoding="utf-8").write(script)
    timeout = min(block_timeout_s, max(1.0, budget_end - time.monotonic()))
    out_path = path[:-3] + ".out"
    with open(out_path, "wb") as out:  # a file, not a pipe: what a block leaves running may hold it
        proc = subprocess.Popen(["bash", "--noprofile", "--norc", path], cwd=scratch.dir, env=scratch.env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=die_with_parent)
    try:
        proc.wait(timeout=timeout)
        error = None if proc.returncode == 0 else f"exit status {proc.returncode}"
    except subprocess.TimeoutExpired:
        error = f"timed out after {timeout:.0f} s"
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # on a timeout, and what the block left in the background
    except ProcessLookupError:
        pass
    proc.wait()
    return error, open(out_path, "rb").read().decode(errors="replace")


def run_file(source, a, display, budget_end, counts):
    """Runs one file's blocks in its own scratch directory; returns its failures."""
    blocks, errors = parse(os.path.join(source, display), display)
    failures = [(e, "") for e in errors]
    scratch = Scratch(source, a.build, a.keep) if any(b.tag != "skip" for b in blocks) else None
    servers_failed = None
    try:
        for b in blocks:
            t0 = time.monotonic()
            if b.tag == "skip":
                counts["skipped"] += 1
                print(f"{b.where()}: skip: {b.reason}", flush=True)
                continue
            if servers_failed or time.monotonic() >= budget_end:
                why = f"the servers of {servers_failed} did not start" if servers_failed else \
                    f"the test's {TOTAL_BUDGET_S} s were spent"
                failures.append((f"{b.where()}: not run: {why}", ""))
                continue
            if b.tag == "servers":
                error, out = scratch.start_servers(b), ""
                servers_failed = b.where() if error else None
            else:
                counts["ran"] += 1
                error, out = run_block(scratch, b, budget_end, a.block_timeout_s)
                if error:
                    out += scratch.exited()
            took = time.monotonic() - t0
            print(f"{b.where()}: {'FAIL' if error else 'ok'} ({took:.1f} s){' ' + b.tag if b.tag else ''}",
                  flush=True)
            if a.verbose and out:
                print(indented(out), end="")
            if error:
                failures.append((f"{b.where()}: {error}", out))
    finally:
        if scratch and a.keep:
            print(f"{display}: scratch directory {scratch.dir}")
        if scratch:
            scratch.stop()
    return failures


def indented(text):
    return "".join("  | " + line + "\n" for line in text.rstrip("\n").split("\n"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the scratch directories")
    ap.add_argument("--verbose", action="store_true", help="print every block's output")
    ap.add_argument("--block-timeout-s", type=float, default=BLOCK_TIMEOUT_S)
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stops the servers on the way out
    source = os.path.abspath(a.source)
    files = a.files or ["README.md"] + sorted(
        os.path.relpath(p, source) for p in glob.glob(os.path.join(source, "docs", "*.md")))
    for exe in ("runtime/kassad", "runtime/kassa", "channels/sim/kassa-channel-sim"):
        if not os.access(os.path.join(a.build, exe), os.X_OK):
            print(f"docs-test: {os.path.join(a.build, exe)} is missing: build it first", file=sys.stderr)
            return 2
    budget_end = time.monotonic() + TOTAL_BUDGET_S
    failures, counts = [], {"ran": 0, "skipped": 0}
    for display in files:
        failures += run_file(source, a, display, budget_end, counts)
    ran, skipped = counts["ran"], counts["skipped"]
    print(f"\ndocs-test: {ran} blocks run, {skipped} skipped, {len(failures)} failed")
    for where, out in failures:
        print(f"\nFAILED {where}")
        if out:
            print(indented(out))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
