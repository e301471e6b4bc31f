#!/usr/bin/env python3
"""The docs test itself: it passes the blocks of selftest/passes.md and fails each block of
selftest/fails.md for its own reason, so that a broken runner cannot pass every page.

Usage: runner_test.py --source DIR --build DIR
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FAILS = "tests/docs/selftest/fails.md"
FAILS_EXPECTED = [  # each line of the report fails.md must produce
    f"FAILED {FAILS}:13: malformed tag: <!-- docs-test: skip -->",
    f"FAILED {FAILS}:18: a docs-test tag must stand right before a ```sh block",
    f"FAILED {FAILS}:21: a ```bash block",
    f"FAILED {FAILS}:3: exit status 1",
    f"docs-test: {FAILS}:5: exit status 1",
    f"docs-test: {FAILS}:10: exit status 0, its comment says exit 1",
    f"FAILED {FAILS}:25: timed out after 2 s",
    f"FAILED {FAILS}:30: line 1: echo hi",
    f"FAILED {FAILS}:34: not run: the servers of {FAILS}:30 did not start",
    "docs-test: 4 blocks run, 0 skipped, 8 failed",
]


def run(a, page):
    p = subprocess.run([sys.executable, os.path.join(HERE, "docs_test.py"), "--source", a.source,
                        "--build", a.build, "--block-timeout-s", "2", page],
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--build", required=True)
    a = ap.parse_args()
    problems = []
    rc, out = run(a, "tests/docs/selftest/passes.md")
    if rc != 0 or "docs-test: 2 blocks run, 1 skipped, 0 failed" not in out:
        problems.append(f"passes.md: exit status {rc}, expected 0 with 2 blocks run and 1 skipped")
    rc, out_fails = run(a, FAILS)
    if rc != 1:
        problems.append(f"fails.md: exit status {rc}, expected 1")
    problems += [f"fails.md: the report lacks: {line}" for line in FAILS_EXPECTED if line not in out_fails]
    if "never" in out_fails:
        problems.append("fails.md: a block went on after a command failed")
    if problems:
        print("passes.md:\n" + out + "\nfails.md:\n" + out_fails)
        print("\n".join(problems))
        return 1
    print("docs runner: passes.md passes, fails.md fails each block for its reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
