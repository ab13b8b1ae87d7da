"""Build script: compiles ringloop's Cython core (the rest is in pyproject.toml)."""

import os
import sys
import sysconfig

from setuptools import Extension, setup

if sys.version_info < (3, 11) or sys.version_info >= (3, 14):
    raise SystemExit(
        "ringloop supports CPython 3.11, 3.12 and 3.13; this is Python "
        f"{sys.version.split()[0]}. Use asyncio's own loop (or uvloop) here."
    )
if sysconfig.get_config_var("Py_GIL_DISABLED"):
    raise SystemExit(
        "ringloop does not support free-threaded CPython builds yet; "
        "use a standard (GIL) build, or asyncio's own loop."
    )
if sys.implementation.name != "cpython":
    raise SystemExit("ringloop needs CPython; on other interpreters use asyncio's own loop.")

from Cython.Build import cythonize  # noqa: E402  (after the version gate)

MODULES = [
    "ringloop.core.handles",
    "ringloop.core.loop",
    "ringloop.core.proactor",
    "ringloop.drivers.base",
    "ringloop.drivers.epoll",
    "ringloop.drivers.selector",
    "ringloop.drivers.uring",
    "ringloop.transports.datagram",
    "ringloop.transports.stream",
]

debug = os.environ.get("RINGLOOP_DEBUG_BUILD") == "1"
# Cython and the C compiler run on every core (RINGLOOP_BUILD_JOBS=1: serial).
jobs = max(1, int(os.environ.get("RINGLOOP_BUILD_JOBS") or os.cpu_count() or 1))
cflags = ["-O2"] if not debug else ["-O0", "-g"]

extensions = [
    Extension(
        name,
        [os.path.join("src", *name.split(".")) + ".pyx"],
        include_dirs=["src/ringloop/includes", "src/ringloop/core"],
        extra_compile_args=cflags,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src"],
        compiler_directives={
            "language_level": 3,
            "embedsignature": True,
            "freethreading_compatible": False,
        },
        annotate=os.environ.get("RINGLOOP_ANNOTATE") == "1",
        nthreads=jobs if jobs > 1 else 0,
    ),
    options={"build_ext": {"parallel": jobs}},
)
