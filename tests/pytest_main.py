"""Bazel's entry point for a test target: pytest on the test file named in its arguments.

pytest imports the file itself (after conftest.py, which quiets TensorFlow first), and keeps its temporary files in
the test's own $TEST_TMPDIR, which Bazel cleans.
"""

import os
import sys

import pytest

if __name__ == "__main__":
    basetemp = os.path.join(os.environ["TEST_TMPDIR"], "pytest")
    # -n 0: Bazel runs the test targets in parallel already; pytest-xdist's workers would only add start-ups.
    sys.exit(pytest.main([*sys.argv[1:], "-q", "-n", "0", "-p", "no:cacheprovider", f"--basetemp={basetemp}"]))
