"""Named event loops the CPython conformance harness can bind the suite to.

A loop under test is a ``module:callable`` spec (the callable builds one
loop: a loop class or a factory function) plus an optional selector variant
(``poll``, ``select``, ``epoll``, ``devpoll``, ``kqueue``): when set, a fresh
``selectors.<Kind>Selector()`` is passed as the only positional argument, the
way ``asyncio.SelectorEventLoop(selector)`` takes one.

Presets give the usual targets a name; ``parse_loop`` also accepts a raw spec
("uvloop:Loop", "ringloop:SelectorEventLoop") with an optional ``+poll`` style
suffix for the selector.
"""

from __future__ import annotations

import dataclasses
import importlib
import selectors
from typing import Any, Callable

__all__ = [
    "LoopSpec",
    "LoopUnavailable",
    "PRESETS",
    "SELECTOR_KINDS",
    "parse_loop",
    "resolve_factory",
]

#: Selector variant name -> class name in the ``selectors`` module.
SELECTOR_KINDS: dict[str, str] = {
    "select": "SelectSelector",
    "poll": "PollSelector",
    "epoll": "EpollSelector",
    "devpoll": "DevpollSelector",
    "kqueue": "KqueueSelector",
}


class LoopUnavailable(RuntimeError):
    """The loop named by a spec cannot be built in this interpreter."""


@dataclasses.dataclass(frozen=True)
class LoopSpec:
    """What to bind the suite to, and how the harness should treat it."""

    #: Preset name, or the raw spec string when no preset was used.
    name: str
    #: "module:callable" (the callable may be dotted: "mod:Cls.create").
    target: str
    #: Selector variant passed to the callable, or None for its default.
    selector: str | None = None
    #: The callable accepts a ``selectors`` selector as its only positional
    #: argument (asyncio.SelectorEventLoop and ringloop.SelectorEventLoop do;
    #: uvloop.Loop does not). When the suite itself passes a selector and the
    #: spec fixes none, it is forwarded only if this is true.
    accepts_selector: bool = False
    #: Apply the reviewed skip list (tests/cpython/skips.py) to this loop.
    apply_skips: bool = False
    #: The loop is the stdlib's own: child watchers and other stdlib-loop
    #: machinery the suite sets up are kept exactly as upstream runs them.
    stdlib: bool = False
    #: Absence is expected on some setups (a later backend, an optional
    #: third-party loop): report it as unavailable rather than as an error.
    optional: bool = False

    def to_json(self) -> dict[str, Any]:
        """Serialisable form, used to hand the spec to worker processes."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LoopSpec":
        """Inverse of ``to_json``."""
        return cls(**data)

    def describe(self) -> str:
        """Human-readable "name (module:callable[, selector])"."""
        extra = f", {self.selector} selector" if self.selector else ""
        if self.name == self.target:
            return f"{self.target}{extra}"
        return f"{self.name} ({self.target}{extra})"


PRESETS: dict[str, LoopSpec] = {
    "asyncio": LoopSpec(
        name="asyncio",
        target="asyncio:SelectorEventLoop",
        accepts_selector=True,
        stdlib=True,
    ),
    "uvloop": LoopSpec(
        name="uvloop",
        target="uvloop:Loop",
        optional=True,
    ),
    "ringloop": LoopSpec(
        name="ringloop",
        target="ringloop:SelectorEventLoop",
        accepts_selector=True,
        apply_skips=True,
    ),
    "ringloop-poll": LoopSpec(
        name="ringloop-poll",
        target="ringloop:SelectorEventLoop",
        selector="poll",
        accepts_selector=True,
        apply_skips=True,
    ),
    "ringloop-proactor": LoopSpec(
        name="ringloop-proactor",
        target="ringloop:ProactorEventLoop",
        apply_skips=True,
        optional=True,
    ),
}


def parse_loop(text: str, selector: str | None = None) -> LoopSpec:
    """Turn a preset name or a "module:callable[+selector]" spec into a LoopSpec.

    An explicit ``selector`` overrides the one of the preset or suffix.
    """
    text = text.strip()
    suffix: str | None = None
    if text in PRESETS:
        spec = PRESETS[text]
    else:
        if "+" in text:
            text, suffix = text.split("+", 1)
        if ":" not in text:
            known = ", ".join(sorted(PRESETS))
            raise ValueError(
                f"unknown loop {text!r}: use a preset ({known}) "
                "or a 'module:callable' spec"
            )
        module, _, attr = text.partition(":")
        spec = LoopSpec(
            name=text,
            target=text,
            # The stdlib's selector loop and ringloop's are documented to
            # take a selector; for anything else assume not.
            accepts_selector=attr.endswith("SelectorEventLoop"),
            apply_skips=module == "ringloop",
            stdlib=text == "asyncio:SelectorEventLoop",
        )
    chosen = selector if selector is not None else suffix
    if chosen is not None:
        if chosen not in SELECTOR_KINDS:
            raise ValueError(
                f"unknown selector {chosen!r}: one of {', '.join(SELECTOR_KINDS)}"
            )
        name = spec.name if chosen == spec.selector else f"{spec.name}+{chosen}"
        spec = dataclasses.replace(
            spec, name=name, selector=chosen, accepts_selector=True
        )
    return spec


def resolve_factory(spec: LoopSpec) -> Callable[..., Any]:
    """Import the callable named by ``spec.target`` (raises LoopUnavailable)."""
    module_name, _, attr_path = spec.target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or a broken extension module
        raise LoopUnavailable(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise LoopUnavailable(
                f"{module_name!r} has no attribute {attr_path!r}"
            ) from exc
    if not callable(obj):
        raise LoopUnavailable(f"{spec.target} is not callable")
    factory: Callable[..., Any] = obj
    return factory


def make_selector(kind: str) -> selectors.BaseSelector:
    """A fresh selector of the named kind (raises LoopUnavailable if absent)."""
    cls = getattr(selectors, SELECTOR_KINDS[kind], None)
    if cls is None:
        raise LoopUnavailable(f"selectors.{SELECTOR_KINDS[kind]} is not available")
    selector: selectors.BaseSelector = cls()
    return selector
