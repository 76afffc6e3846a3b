"""A script of scripts/ run in the test's own process, as `python scripts/NAME.py ARGS...` runs in a new one: from
its arguments to its exit code, stdout and stderr.

A new Python process spends seconds importing TensorFlow before it reads a flag; what a user types (flags, one-line
errors, exit codes, what a script prints and writes) needs none of that. The tests of the process itself (a fresh
shell's quiet stderr, signals, kills, pipes, memory) start real ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import runpy
import sys
from pathlib import Path

from absl import app, flags
from conftest import REPO

SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))  # the scripts import `common` from beside them
app.define_help_flags()  # once per process, as app.run does: they stay when a run's own flags are removed


@dataclasses.dataclass(frozen=True)
class Done:
    """What a finished script left: as subprocess.CompletedProcess has it."""

    returncode: int
    stdout: str
    stderr: str


def run_script(name: str, *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> Done:
    """Runs scripts/`name`.py with `args` (and `env` added to the environment, in `cwd`) to its exit.

    The script's flags are defined in absl's global FLAGS as it runs, and removed after it: each run parses its
    command line into flags of their defaults, as a new process would.
    """
    set_aside = _set_aside_flags()
    before = set(flags.FLAGS)
    stdout, stderr = io.StringIO(), io.StringIO()
    returncode = 0
    with (
        _environment(env or {}),
        contextlib.chdir(cwd or Path.cwd()),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        saved_argv = sys.argv
        sys.argv = [str(SCRIPTS / f"{name}.py"), *map(str, args)]
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        except SystemExit as e:
            if isinstance(e.code, str):  # sys.exit("message"): Python prints it and exits 1
                print(e.code, file=sys.stderr)
            returncode = e.code if isinstance(e.code, int) else int(e.code is not None)
        finally:
            sys.argv = saved_argv
            for flag_name in set(flags.FLAGS) - before:
                delattr(flags.FLAGS, flag_name)
            for flag_name, (module, flag) in set_aside.items():
                if flag_name == flag.name:  # registering the name registers the short name with it
                    flags.FLAGS[flag_name] = flag
                    flags.FLAGS.register_flag_by_module(module, flag)
            flags.FLAGS.unparse_flags()
    return Done(returncode, stdout.getvalue(), stderr.getvalue())


def _set_aside_flags() -> dict[str, tuple[str, flags.Flag]]:
    """Removes the flags that modules other than absl's defined here (a test that imported a script as a module) and
    returns them with their modules: a script defines its own, as in a new process."""
    foreign = {}
    for name in flags.FLAGS:
        module = flags.FLAGS.find_module_defining_flag(name, default="")
        if not module.startswith("absl."):
            foreign[name] = (module, flags.FLAGS[name])
    for name in foreign:
        delattr(flags.FLAGS, name)
    return foreign


@contextlib.contextmanager
def _environment(changes: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update(changes)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
