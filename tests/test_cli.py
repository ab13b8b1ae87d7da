"""``python -m ringloop run``: scripts and ``-m module``, with a loop kind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


MODULE = textwrap.dedent("""
    import asyncio, sys
    async def main():
        return type(asyncio.get_running_loop()).__name__
    print(asyncio.run(main()), sys.argv[1:], __name__)
""")


def _cli(args, cwd, timeout=60):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("RINGLOOP_LOOP", None)
    return subprocess.run([sys.executable, "-m", "ringloop", "run", *args], cwd=str(cwd),
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def mod_dir(tmp_path):
    (tmp_path / "cli_probe_mod.py").write_text(MODULE)
    pkg = tmp_path / "cli_probe_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(MODULE)
    return tmp_path


def test_run_module_gets_the_arguments_after_it_even_option_like_ones(mod_dir):
    # As `python -m mod --bind ::1 -m x`: everything after the module is its own.
    r = _cli(["-m", "cli_probe_mod", "--bind", "::1", "-m", "x"], mod_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(None, 1)[0] == "SelectorEventLoop"
    assert "['--bind', '::1', '-m', 'x'] __main__" in r.stdout


def test_run_package_main(mod_dir):
    r = _cli(["-m", "cli_probe_pkg", "a"], mod_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["SelectorEventLoop", "['a']", "__main__"]


@pytest.mark.parametrize("form", [["--loop", "proactor"], ["--loop=proactor"]])
def test_run_loop_option_picks_the_kind(mod_dir, form):
    (mod_dir / "script.py").write_text(MODULE)
    r = _cli([*form, "script.py", "-x"], mod_dir)
    if "UringUnavailable" in r.stderr:
        pytest.skip("io_uring is unavailable here: " + r.stderr.strip().splitlines()[-1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ProactorEventLoop", "['-x']", "__main__"]
    r = _cli([*form, "-m", "cli_probe_mod"], mod_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ProactorEventLoop", "[]", "__main__"]


def test_run_missing_module_is_one_line_and_status_1(tmp_path):
    # As `python -m missing`: one line, status 1, no traceback.
    r = _cli(["-m", "no_such_module_for_ringloop_cli"], tmp_path)
    plain = subprocess.run([sys.executable, "-m", "no_such_module_for_ringloop_cli"],
                           capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == plain.returncode == 1
    assert "Traceback" not in r.stderr
    assert "No module named 'no_such_module_for_ringloop_cli'" in r.stderr
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize("args, message", [
    (["--loop", "bogus", "x.py"], "unknown ringloop loop kind 'bogus'"),
    (["--loop"], "--loop needs a value"),
    ([], "a script path or -m module is needed"),
    (["-m"], "-m needs a module name"),
    (["--frobnicate", "x.py"], "unknown option '--frobnicate'"),
])
def test_run_bad_command_line_is_status_2_with_usage(tmp_path, args, message):
    r = _cli(args, tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert message in r.stderr
    assert "usage: python -m ringloop run" in r.stderr or "unknown ringloop loop kind" in r.stderr


def test_run_help(tmp_path):
    r = _cli(["--help"], tmp_path)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: python -m ringloop run [--loop selector|proactor]")
