#!/usr/bin/env bash
# The benchmark suite, from scratch: a Python 3.11 venv with ringloop (built
# from this checkout, not editable), uvloop, rloop, httptools and matplotlib,
# wrk if it is missing (apt-get, as root), then the steps
#   micro   bench/micro.py       loop primitives, ops/s
#   echo    bench/echo.py        TCP echo: protocol/streams/sock x sizes x conns, + C server
#   http    bench/httpbench.py   HTTP/1.1 keep-alive (httptools) under wrk and the native client
#   proc    bench/procbench.py   subprocess spawns/s and pipe transport MiB/s
#   report  bench/report.py      one markdown page (echo + http + proc) and one PNG chart
# Arguments go to micro.py until a literal --echo, --http, --proc or --micro
# switches to that step's script, e.g.
#   bench/run.sh --reps 3 --bench call_soon,future --loops uvloop,ringloop
#   bench/run.sh --loops uvloop,ringloop --echo --loops uvloop,ringloop --http --loops uvloop,ringloop
#   RINGLOOP_BENCH_STEPS="echo report" bench/run.sh --echo --quick
#   RINGLOOP_BENCH_STEPS="proc report" bench/run.sh --proc --quick
# Environment:
#   RINGLOOP_BENCH_VENV    venv path (default: <repo>/.venv-bench)
#   RINGLOOP_BENCH_PYTHON  interpreter to build the venv with (default: pyenv's 3.11)
#   RINGLOOP_BENCH_SKIP_INSTALL=1  reuse the venv as it is (no rebuild of ringloop)
#   RINGLOOP_BENCH_STEPS   which steps, in order (default: "micro echo http proc report")
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${RINGLOOP_BENCH_VENV:-$root/.venv-bench}"
steps="${RINGLOOP_BENCH_STEPS:-micro echo http proc report}"

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

has_step() { case " $steps " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

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
    say "installing uvloop, rloop, httptools (the HTTP server's parser), matplotlib (the chart)"
    "$venv/bin/python" -m pip install --quiet uvloop rloop httptools matplotlib
    # Rebuilt on every run, so the numbers are for this checkout's code.
    say "building and installing ringloop from $root (compiles the Cython core)"
    "$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$root"
fi

# wrk loads the HTTP server. Installed here when missing and we can (root and
# apt-get); otherwise the http step says it skipped, and why.
if has_step http && ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing wrk (apt-get install -y wrk)"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1; then
            DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 \
                || say "could not install wrk; the http step will be skipped"
        fi
    else
        say "wrk is not installed and this is not root with apt-get: the http step will be skipped"
    fi
fi

micro_args=()
echo_args=()
http_args=()
proc_args=()
target="micro"
for arg in "$@"; do
    case "$arg" in
        --micro|--echo|--http|--proc) target="${arg#--}"; continue ;;
    esac
    case "$target" in
        micro) micro_args+=("$arg") ;;
        echo) echo_args+=("$arg") ;;
        http) http_args+=("$arg") ;;
        proc) proc_args+=("$arg") ;;
    esac
done

# This run's result files, for the report step.
stamp="$(date +%Y%m%d-%H%M%S)"
results="$here/results"
echo_json="$results/echo-$stamp.json"
http_json="$results/http-$stamp.json"
proc_json="$results/proc-$stamp.json"

# Each step runs even if the one before failed; the exit status is the
# last failure's.
status=0
started=$SECONDS
for step in $steps; do
    t0=$SECONDS
    case "$step" in
        micro)
            say "running bench/micro.py ${micro_args[*]+"${micro_args[*]}"}"
            "$venv/bin/python" "$here/micro.py" ${micro_args[@]+"${micro_args[@]}"} || status=$?
            ;;
        echo)
            # Compiles bench/loadgen.c and bench/cecho.c with cc into bench/build/.
            say "running bench/echo.py ${echo_args[*]+"${echo_args[*]}"}"
            "$venv/bin/python" "$here/echo.py" --json "$echo_json" \
                ${echo_args[@]+"${echo_args[@]}"} || status=$?
            ;;
        http)
            say "running bench/httpbench.py ${http_args[*]+"${http_args[*]}"}"
            "$venv/bin/python" "$here/httpbench.py" --json "$http_json" \
                ${http_args[@]+"${http_args[@]}"} || status=$?
            ;;
        proc)
            # Spawns /bin/true and /bin/echo; the pipe rows run wc and dd (coreutils).
            say "running bench/procbench.py ${proc_args[*]+"${proc_args[*]}"}"
            "$venv/bin/python" "$here/procbench.py" --json "$proc_json" \
                ${proc_args[@]+"${proc_args[@]}"} || status=$?
            ;;
        report)
            report_args=()
            [ -f "$echo_json" ] && report_args+=(--echo "$echo_json")
            [ -f "$http_json" ] && report_args+=(--http "$http_json")
            [ -f "$proc_json" ] && report_args+=(--proc "$proc_json")
            if [ ${#report_args[@]} -eq 0 ]; then
                say "report: no echo, http or proc results from this run (a --json of your own? run bench/report.py --echo PATH --http PATH --proc PATH)"
            else
                say "running bench/report.py ${report_args[*]}"
                "$venv/bin/python" "$here/report.py" "${report_args[@]}" \
                    --out "$results/suite-$stamp" || status=$?
            fi
            ;;
        *)
            say "unknown step '$step' in RINGLOOP_BENCH_STEPS (known: micro echo http proc report)"
            status=2
            ;;
    esac
    say "step $step took $(( (SECONDS - t0) / 60 )) min $(( (SECONDS - t0) % 60 )) s"
done
say "all steps took $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"
exit "$status"
