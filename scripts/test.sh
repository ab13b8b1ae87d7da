#!/usr/bin/env bash
# Set up from scratch and run ringloop's whole test suite on every supported
# CPython (3.11, 3.12, 3.13): for each, a fresh venv, `pip install .[test]`
# (which compiles the Cython core with the build requirements pip fetches),
# then pytest: the behaviour suite on every loop, and CPython's own
# test.test_asyncio bound to ringloop (tests/cpython).
#
#   bash scripts/test.sh                 # all versions
#   PYTHONS="3.12" bash scripts/test.sh  # a subset
#   bash scripts/test.sh -k timers       # extra args go to pytest
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
versions="${PYTHONS:-3.11 3.12 3.13}"

find_python() {
    local v="$1" p
    if command -v pyenv >/dev/null 2>&1; then
        for p in "$(pyenv root)"/versions/"$v".*/bin/python"$v"; do
            [ -x "$p" ] && { echo "$p"; return 0; }
        done
    fi
    command -v "python$v" || return 1
}

status=0
summary=""
for v in $versions; do
    py="$(find_python "$v")" || { echo "Python $v not found (pyenv or python$v on PATH)" >&2; exit 2; }
    venv="$root/.venv-test-$v"
    echo "=== Python $v ($py): building ringloop into $venv"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q "$root[test]"
    # Heavy stress tests run once, on 3.11 (the CI budget is 45 minutes).
    marker=()
    if [ "$v" != "3.11" ]; then marker=(-m "not stress"); fi
    echo "=== Python $v: pytest"
    set +e
    (cd "$root" && "$venv/bin/python" -m pytest -p no:cacheprovider "${marker[@]}" "$@")
    rc=$?
    set -e
    summary+="Python $v: pytest exit $rc"$'\n'
    if [ $rc -ne 0 ]; then status=1; fi
    if [ "$v" = "3.11" ] && [ $# -eq 0 ]; then
        # Once, the io_uring code and the stream transports under CPython's
        # debug allocator: buffers the kernel writes into (or sends from)
        # are checked for overruns and use after free.
        echo "=== Python $v: io_uring tests under PYTHONMALLOC=debug"
        set +e
        (cd "$root" && PYTHONMALLOC=debug RINGLOOP_TEST_LOOPS=ringloop-proactor \
            "$venv/bin/python" -m pytest -p no:cacheprovider -q \
            tests/test_uring_driver.py tests/test_sock.py tests/test_kinds.py \
            tests/test_callbacks.py tests/test_io.py tests/test_gc.py \
            tests/test_transport_stream.py tests/test_transport_faults.py \
            tests/test_pipes.py)
        rc=$?
        set -e
        summary+="Python $v: PYTHONMALLOC=debug io_uring tests exit $rc"$'\n'
        if [ $rc -ne 0 ]; then status=1; fi
    fi
done
echo "=== summary"
printf '%s' "$summary"
exit $status
