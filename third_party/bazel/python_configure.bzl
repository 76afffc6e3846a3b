"""`@local_python`: a Python toolchain for the interpreter where requirements.txt is installed.

Bazel's own default toolchain runs whichever `python3` a test's PATH happens to find. This one is chosen once,
when Bazel sets up the workspace: `$PYTHON_BIN_PATH` if set, else `python3` on PATH (an activated virtualenv's),
and Bazel sets it up again when either variable changes. The path is kept as found, not resolved, so that a
virtualenv's interpreter still finds its site-packages.
"""

def _local_python_impl(ctx):
    python = ctx.os.environ.get("PYTHON_BIN_PATH") or ctx.which("python3")
    if not python:
        fail("no python3 on PATH: activate the virtualenv where requirements.txt is installed, or set PYTHON_BIN_PATH")
    python = str(python)
    if not python.startswith("/") or not ctx.path(python).exists:
        fail("PYTHON_BIN_PATH=%s: not an absolute path to an existing file" % python)
    check = ctx.execute([python, "-c", "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is None)"])
    if check.return_code != 0:
        fail("%s has no tensorflow: run `pip install -r requirements-dev.txt` in its environment, or set PYTHON_BIN_PATH to a python3 that has it" % python)
    ctx.file("BUILD", """\
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

py_runtime(
    name = "python3",
    interpreter_path = "{python}",
    python_version = "PY3",
)

py_runtime_pair(
    name = "runtimes",
    py3_runtime = ":python3",
)

toolchain(
    name = "toolchain",
    toolchain = ":runtimes",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
""".format(python = python))

local_python = repository_rule(
    implementation = _local_python_impl,
    environ = ["PYTHON_BIN_PATH", "PATH"],
    local = True,
)
