"""Bind CPython's installed ``test.test_asyncio`` suite to a loop under test.

Two halves, both applied inside a worker process before a test module runs:

* ``install(spec)`` routes every loop the suite creates through the loop
  under test. It patches the *class* attribute ``_loop_factory`` of the
  default policy class, so it survives the suite's many
  ``asyncio.set_event_loop_policy(None)`` calls, and replaces the names tests
  call directly (``asyncio.SelectorEventLoop``, ``asyncio.EventLoop`` on
  3.13, and their ``asyncio.unix_events`` twins) by a stand-in class whose
  calls build the loop under test and whose ``isinstance`` checks accept it.
  Every loop built that way is counted, which is how a test is known to have
  used the loop under test. The suite's ``TestCase.close_loop`` helper reads
  the private ``loop._default_executor``; when a loop lacks it the helper is
  fed the public ``shutdown_default_executor()`` path instead.

* ``rebind_module(module, binding)`` replaces the per-selector (Epoll, Poll,
  Select, Kqueue, Proactor) and per-child-watcher test classes of a module by
  ONE class bound to the loop under test, so that its tests run once, on the
  loop under test, under a stable name that is the same for every loop. The
  replaced classes stay in the module (tests name them) but are left out of
  the suite. test_runners' ``BaseTest.new_loop``, which builds a stdlib
  ``BaseEventLoop`` with mocked internals, builds the loop under test instead.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import asyncio.selector_events
import asyncio.unix_events
import dataclasses
import selectors
import types
import unittest
from typing import Any, Callable

from .presets import LoopSpec, LoopUnavailable, make_selector, resolve_factory

__all__ = [
    "BINDINGS",
    "ClassBinding",
    "LoopBinding",
    "install",
    "rebind_module",
]


class LoopBinding:
    """The installed loop under test: builds loops and counts them."""

    def __init__(self, spec: LoopSpec, factory: Callable[..., Any]) -> None:
        self.spec = spec
        self.factory = factory
        #: Loops of the loop under test built so far in this process.
        self.created = 0
        #: The class of the loops built (set by the probe in ``install``).
        self.loop_type: type = object
        #: Selectors the suite passed in and that were not forwarded.
        self.ignored_selectors = 0
        #: What the probe loop was: class, and backend when the loop says.
        self.description = ""

    def make_loop(self, *args: Any, **kwargs: Any) -> Any:
        """Build one loop under test.

        The suite sometimes passes a selector (``asyncio.SelectorEventLoop(
        selectors.SelectSelector())``). It is forwarded when the spec fixes no
        selector of its own and the callable takes one; otherwise the loop
        under test is built as configured and the passed selector is closed.
        """
        if args or kwargs:
            if self.spec.selector is None and self.spec.accepts_selector:
                loop = self.factory(*args, **kwargs)
                self.created += 1
                return loop
            for value in (*args, *kwargs.values()):
                if isinstance(value, selectors.BaseSelector):
                    value.close()
            self.ignored_selectors += 1
        if self.spec.selector is not None:
            loop = self.factory(make_selector(self.spec.selector))
        else:
            loop = self.factory()
        self.created += 1
        return loop


# The binding installed in this process (one per worker process).
_current: LoopBinding | None = None


def current() -> LoopBinding:
    """The binding installed by ``install`` (raises if none is)."""
    if _current is None:
        raise RuntimeError("no loop under test installed")
    return _current


class _LoopClassMeta(type):
    """Metaclass of the stand-ins for ``asyncio.SelectorEventLoop`` & co.

    Calling the stand-in builds the loop under test; ``isinstance`` and
    ``issubclass`` answer for the loop under test's class.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return current().make_loop(*args, **kwargs)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, current().loop_type)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, current().loop_type)


def _stand_in(name: str) -> type:
    """A stand-in class named like the stdlib name it replaces."""
    doc = f"Stand-in for asyncio.{name}: calling it builds the loop under test."
    return _LoopClassMeta(name, (), {"__module__": __name__, "__doc__": doc})


class _PublicExecutorView:
    """A loop seen by the suite's close_loop() once its default executor was
    shut down through the public API: ``_default_executor`` reads None and
    everything else is the loop's own."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._default_executor = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


def _shim_close_loop() -> None:
    """Make ``test_utils.TestCase.close_loop`` work on loops without the
    stdlib-private ``_default_executor`` attribute."""
    from test.test_asyncio import utils as test_utils

    original = test_utils.TestCase.__dict__["close_loop"]
    original_fn: Callable[[Any], None] = original.__func__

    def close_loop(loop: Any) -> None:
        if not hasattr(loop, "_default_executor"):
            if not loop.is_closed():
                loop.run_until_complete(loop.shutdown_default_executor())
            loop = _PublicExecutorView(loop)
        original_fn(loop)

    close_loop.__doc__ = original_fn.__doc__
    setattr(test_utils.TestCase, "close_loop", staticmethod(close_loop))


def _describe_loop(loop: Any) -> str:
    """"module.Class", plus the I/O backend for loops that report one
    (ringloop's ``statistics()["driver"]``, the stdlib's ``_selector``)."""
    cls = type(loop)
    text = f"{cls.__module__}.{cls.__qualname__}"
    backend = ""
    statistics = getattr(loop, "statistics", None)
    if callable(statistics):
        try:
            backend = str(statistics().get("driver", ""))
        except Exception:
            backend = ""
    if not backend and isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        # The stdlib loop's own private attribute, read for this label only.
        backend = type(getattr(loop, "_selector", None)).__name__
    return f"{text} ({backend})" if backend else text


def install(spec: LoopSpec) -> LoopBinding:
    """Route every loop creation of this process through the loop under test.

    Builds (and closes) one probe loop first, so an unusable loop is reported
    as ``LoopUnavailable`` before any test runs.
    """
    global _current
    factory = resolve_factory(spec)  # before patching: "asyncio:SelectorEventLoop"
    binding = LoopBinding(spec, factory)
    try:
        probe = binding.make_loop()
    except Exception as exc:
        raise LoopUnavailable(
            f"{spec.describe()} cannot build a loop: {type(exc).__name__}: {exc}"
        ) from exc
    binding.loop_type = type(probe)
    binding.description = _describe_loop(probe)
    probe.close()
    binding.created = 0
    _current = binding

    policy_cls = asyncio.unix_events._UnixDefaultEventLoopPolicy
    setattr(policy_cls, "_loop_factory", staticmethod(binding.make_loop))
    for name in ("SelectorEventLoop", "EventLoop"):
        if hasattr(asyncio.unix_events, name):
            stand_in = _stand_in(name)
            setattr(asyncio.unix_events, name, stand_in)
            setattr(asyncio, name, stand_in)
    asyncio.set_event_loop_policy(None)
    _shim_close_loop()
    return binding


@dataclasses.dataclass(frozen=True)
class ClassBinding:
    """How one module's per-variant test classes collapse into one class."""

    #: The variant kept: the bound class subclasses it (keeping its own
    #: tests and attributes) and replaces it in the module.
    keep: str
    #: Name of the bound class (part of every test id of the skip list).
    bound: str
    #: Sibling variants removed from the module.
    drop: tuple[str, ...] = ()
    #: Method through which the class builds its loop, overridden to build
    #: the loop under test; None when the class uses asyncio.new_event_loop()
    #: or the default policy (already routed by ``install``).
    factory_method: str | None = None
    #: The class attaches a stdlib SafeChildWatcher (SIGCHLD handler and
    #: waitpid(-1) reaping) in setUp: keep it for the stdlib loop only, since
    #: other loops reap their own children and may lack add_signal_handler.
    stdlib_watcher_mixin: str | None = None


_SELECTOR_VARIANTS = (
    "KqueueEventLoopTests",
    "EPollEventLoopTests",
    "PollEventLoopTests",
    "ProactorEventLoopTests",
)

#: Module name -> how its loop-variant classes are bound.
BINDINGS: dict[str, tuple[ClassBinding, ...]] = {
    "test_events": (
        ClassBinding(
            keep="SelectEventLoopTests",
            bound="EventLoopTests",
            drop=_SELECTOR_VARIANTS,
            factory_method="create_event_loop",
            stdlib_watcher_mixin="UnixEventLoopTestsMixin",
        ),
    ),
    "test_sock_lowlevel": (
        ClassBinding(
            keep="SelectEventLoopTests",
            bound="EventLoopTests",
            drop=_SELECTOR_VARIANTS,
            factory_method="create_event_loop",
        ),
    ),
    "test_sendfile": (
        ClassBinding(
            keep="SelectEventLoopTests",
            bound="EventLoopTests",
            drop=_SELECTOR_VARIANTS,
            factory_method="create_event_loop",
        ),
    ),
    "test_buffered_proto": (
        ClassBinding(
            keep="BufferedProtocolSelectorTests",
            bound="BufferedProtocolTests",
            drop=("BufferedProtocolProactorTests",),
            factory_method="new_loop",
        ),
    ),
    "test_server": (
        ClassBinding(
            keep="SelectorStartServerTests",
            bound="StartServerTests",
            drop=("ProactorStartServerTests",),
            factory_method="new_loop",
        ),
    ),
    "test_sslproto": (
        ClassBinding(
            keep="SelectorStartTLSTests",
            bound="StartTLSTests",
            drop=("ProactorStartTLSTests",),
            factory_method="new_loop",
        ),
    ),
    "test_subprocess": (
        # One child-watcher variant: the threaded watcher, the stdlib's
        # default. The loop comes from the (patched) default policy.
        ClassBinding(
            keep="SubprocessThreadedWatcherTests",
            bound="SubprocessTests",
            drop=(
                "SubprocessMultiLoopWatcherTests",
                "SubprocessSafeWatcherTests",
                "SubprocessFastWatcherTests",
                "SubprocessPidfdWatcherTests",
                "SubprocessProactorTests",
            ),
        ),
    ),
}

# Methods through which suite classes build their own real loop; a class
# still defining one after rebinding is reported (a variant we do not know).
_LOOP_BUILDING_METHODS = ("create_event_loop", "new_loop")


def _bind_class(
    module: types.ModuleType, rule: ClassBinding, binding: LoopBinding
) -> type:
    keep: type = getattr(module, rule.keep)
    if hasattr(module, rule.bound):
        raise RuntimeError(f"{module.__name__} already has a {rule.bound}")
    namespace: dict[str, Any] = {
        "__module__": module.__name__,
        "__qualname__": rule.bound,
        "__doc__": f"{rule.keep} bound to the loop under test "
        f"({binding.spec.describe()}).",
    }
    if rule.factory_method is not None:

        def build_loop(self: unittest.TestCase) -> Any:
            return binding.make_loop()

        build_loop.__name__ = rule.factory_method
        namespace[rule.factory_method] = build_loop
    if rule.stdlib_watcher_mixin is not None and not binding.spec.stdlib:
        watcher_mixin: type = getattr(module, rule.stdlib_watcher_mixin)

        def setUp(self: Any) -> None:
            # Skip the watcher mixin's setUp, run the rest of the chain.
            super(watcher_mixin, self).setUp()  # type: ignore[arg-type]

        namespace["setUp"] = setUp
    return type(rule.bound, (keep,), namespace)


def _bind_runners_base(module: types.ModuleType, binding: LoopBinding) -> None:
    """test_runners.BaseTest.new_loop builds a stdlib BaseEventLoop with its
    private ``_process_events``, ``_write_to_self`` and ``_selector`` mocked:
    build the loop under test instead, keeping the suite's own bookkeeping
    (``shutdown_ag_run``, checked in tearDown) around the real
    ``shutdown_asyncgens``."""
    base: type = module.BaseTest

    def new_loop(self: unittest.TestCase) -> Any:
        loop = binding.make_loop()
        real_shutdown_asyncgens = loop.shutdown_asyncgens
        loop.shutdown_ag_run = False

        async def shutdown_asyncgens() -> None:
            await real_shutdown_asyncgens()
            loop.shutdown_ag_run = True

        loop.shutdown_asyncgens = shutdown_asyncgens
        return loop

    new_loop.__doc__ = _bind_runners_base.__doc__
    base.new_loop = new_loop  # type: ignore[attr-defined]


#: Module name -> classes whose loop-building method is patched in place
#: (no variants to collapse: the class builds a stdlib loop on purpose).
METHOD_BINDINGS: dict[str, Callable[[types.ModuleType, LoopBinding], None]] = {
    "test_runners": _bind_runners_base,
}


def rebind_module(
    module: types.ModuleType, binding: LoopBinding
) -> tuple[set[type], list[str]]:
    """Collapse the module's loop-variant classes into bound classes.

    The bound classes are added to the module; the variants they replace stay
    in the module (tests refer to them by name, e.g. ``isinstance(self,
    SubprocessFastWatcherTests)``) and are returned, for the caller to leave
    out of the loaded suite. Also returns notes about anything unexpected (a
    loop-building class this table does not know, a kept class missing on
    this Python version).
    """
    short = module.__name__.rpartition(".")[2]
    notes: list[str] = []
    hidden: set[type] = set()
    handled: set[str] = set()
    for rule in BINDINGS.get(short, ()):
        if not hasattr(module, rule.keep):
            notes.append(f"{short}: no class {rule.keep} on this Python version")
            continue
        setattr(module, rule.bound, _bind_class(module, rule, binding))
        handled.add(rule.bound)
        for name in (rule.keep, *rule.drop):
            if hasattr(module, name):
                hidden.add(getattr(module, name))
                handled.add(name)
    patch = METHOD_BINDINGS.get(short)
    if patch is not None:
        patch(module, binding)
        handled.add("BaseTest")
    for name, obj in list(vars(module).items()):
        if (
            isinstance(obj, type)
            and issubclass(obj, unittest.TestCase)
            and name not in handled
            and obj.__module__ == module.__name__
            and any(m in vars(obj) for m in _LOOP_BUILDING_METHODS)
        ):
            notes.append(
                f"{short}.{name} builds its own loop and is not bound by "
                "tests/cpython/binding.py: its tests may not use the loop under test"
            )
    return hidden, notes
