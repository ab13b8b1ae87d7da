#!/usr/bin/env bash
# Set up the benchmark from scratch and run it: a Python 3.11 venv with
# ringloop (built from this checkout, not editable), uvloop and rloop, then
# bench/micro.py and bench/echo.py with their defaults. Arguments before a
# literal --echo go to micro.py, arguments after it to echo.py, e.g.
#   bench/run.sh --reps 3 --bench call_soon,future --loops uvloop,ringloop
#   bench/run.sh --loops uvloop,ringloop --echo --loops uvloop,ringloop --strace
# Environment:
#   RINGLOOP_BENCH_VENV    venv path (default: <repo>/.venv-bench)
#   RINGLOOP_BENCH_PYTHON  interpreter to build the venv with (default: pyenv's 3.11)
#   RINGLOOP_BENCH_SKIP_INSTALL=1  reuse the venv as it is (no rebuild of ringloop)
#   RINGLOOP_BENCH_STEPS   which steps, in order (default: "micro echo")
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${RINGLOOP_BENCH_VENV:-$root/.venv-bench}"

say() { printf '[bench/run.sh] %s\n' "$*" >&2; }

is_py311() {
    [ -n "$1" ] && [ -x "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null
}

find_python() {
    local candidate pyenv_root
    if [ -n "${RINGLOOP_BENCH_PYTHON:-}" ]; then
        is_py311 "$RINGLOOP_BENCH_PYTHON" && { echo "$RINGLOOP_BENCH_PYTHON"; return 0; }
        say "RINGLOOP_BENCH_PYTHON=$RINGLOOP_BENCH_PYTHON is not a Python 3.11"
        return 1
    fi
    if command -v pyenv >/dev/null 2>&1; then
        pyenv_root="$(pyenv root)"
    else
        pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    fi
    for candidate in "$pyenv_root/versions/3.11.7/bin/python" "$pyenv_root"/versions/3.11.*/bin/python; do
        is_py311 "$candidate" && { echo "$candidate"; return 0; }
    done
    if command -v pyenv >/dev/null 2>&1; then
        candidate="$(pyenv which python3.11 2>/dev/null || true)"
        is_py311 "$candidate" && { echo "$candidate"; return 0; }
    fi
    candidate="$(command -v python3.11 || true)"
    is_py311 "$candidate" && { echo "$candidate"; return 0; }
    say "no Python 3.11 found (tried pyenv's versions, 'pyenv which python3.11', python3.11 on PATH);"
    say "install one (pyenv install 3.11.7) or set RINGLOOP_BENCH_PYTHON"
    return 1
}

# The venv: made once, made anew if it is broken or not 3.11.
if ! is_py311 "$venv/bin/python"; then
    python="$(find_python)"
    say "creating $venv with $python"
    "$python" -m venv --clear "$venv"
    RINGLOOP_BENCH_SKIP_INSTALL=0
fi

# The installed package is what gets measured: never an in-place build
# from src/ picked up through PYTHONPATH.
unset PYTHONPATH

if [ "${RINGLOOP_BENCH_SKIP_INSTALL:-0}" != "1" ]; then
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    say "installing uvloop and rloop"
    "$venv/bin/python" -m pip install --quiet uvloop rloop
    # Rebuilt on every run, so the numbers are for this checkout's code.
    say "building and installing ringloop from $root (compiles the Cython core)"
    "$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$root"
fi

micro_args=()
echo_args=()
target="micro"
for arg in "$@"; do
    if [ "$target" = micro ] && [ "$arg" = "--echo" ]; then
        target="echo"
    elif [ "$target" = micro ]; then
        micro_args+=("$arg")
    else
        echo_args+=("$arg")
    fi
done

# Each step runs even if the one before failed; the exit status is the
# last failure's.
status=0
for step in ${RINGLOOP_BENCH_STEPS:-micro echo}; do
    case "$step" in
        micro)
            say "running bench/micro.py ${micro_args[*]+"${micro_args[*]}"}"
            "$venv/bin/python" "$here/micro.py" ${micro_args[@]+"${micro_args[@]}"} || status=$?
            ;;
        echo)
            # TCP echo over sock_*: compiles bench/loadgen.c with cc into bench/build/.
            say "running bench/echo.py ${echo_args[*]+"${echo_args[*]}"}"
            "$venv/bin/python" "$here/echo.py" ${echo_args[@]+"${echo_args[@]}"} || status=$?
            ;;
        *)
            say "unknown step '$step' in RINGLOOP_BENCH_STEPS (known: micro echo)"
            status=2
            ;;
    esac
done
exit "$status"
