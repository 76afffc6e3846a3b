"""The part of rules_java that Bazel 4.2.3's own @bazel_tools loads: the native Java rules under their Starlark names.

Bazel loads these to list its registered Java toolchains; nothing in this project is Java.
"""

java_import = native.java_import
java_runtime = native.java_runtime
java_toolchain = native.java_toolchain
