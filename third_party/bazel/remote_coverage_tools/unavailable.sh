#!/bin/sh
echo "error: bazel coverage needs Bazel's coverage tools (@remote_coverage_tools), which this offline setup does not download" >&2
exit 1
