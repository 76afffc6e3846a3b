"""The part of rules_cc that Bazel 4.2.3's own @bazel_tools loads: the native C++ rules under their Starlark names.

The rules_cc of Bazel 4.2.3's time did the same (it wrapped the native rules); Debian's bazel-rules-cc is newer and
needs a newer Bazel. Nothing in this project is C++: Bazel loads these only to set up its C++ toolchain, which
every py_test depends on implicitly.
"""

cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
objc_library = native.objc_library
