"""Hook plans: each event reaches exactly the addons mitmproxy's own walk reaches."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import importlib
import logging
from typing import Any

import pytest
from mitmproxy import exceptions, hooks, http
from mitmproxy.proxy.layers.http._hooks import HttpRequestHook, HttpResponseHook
from mitmproxy.test import taddons, tflow

from agentcage.proxy import hook_plans


class Watcher:
    """Has no hooks; counts how often mitmproxy looks one up on it."""

    def __init__(self) -> None:
        self.lookups: collections.Counter[str] = collections.Counter()

    def __getattr__(self, name: str) -> Any:
        self.lookups[name] += 1
        raise AttributeError(name)


class Recorder:
    def __init__(self, name: str, seen: list[str]) -> None:
        self.name = name
        self.seen = seen

    def request(self, flow: http.HTTPFlow) -> None:
        self.seen.append(self.name)


class AsyncRecorder:
    def __init__(self, name: str, seen: list[str]) -> None:
        self.name = name
        self.seen = seen

    async def request(self, flow: http.HTTPFlow) -> None:
        await asyncio.sleep(0)
        self.seen.append(self.name)


class Parent:
    """A top-level addon whose hook is on a sub-addon only."""

    def __init__(self, child: object) -> None:
        self.addons = [child]


class Failing:
    def request(self, flow: http.HTTPFlow) -> None:
        raise RuntimeError("hook bug")


class NotCallable:
    request = 5


class Halting:
    def request(self, flow: http.HTTPFlow) -> None:
        raise exceptions.AddonHalt


def context(*addons: object) -> taddons.context:
    return taddons.context(*addons)  # type: ignore[no-untyped-call]


def fire(tctx: taddons.context, hook: Any, times: int = 1) -> None:
    async def run() -> None:
        for _ in range(times):
            await tctx.master.addons.trigger_event(hook)

    asyncio.run(run())


@pytest.fixture(autouse=True)
def installed() -> None:
    hook_plans.install()


def test_an_addon_without_the_hook_is_looked_at_once_per_tree_change() -> None:
    seen: list[str] = []
    watcher = Watcher()
    with context(watcher, Recorder("a", seen)) as tctx:
        watcher.lookups.clear()  # registering looks up the load and configure hooks
        hook = HttpRequestHook(tflow.tflow())
        fire(tctx, hook, times=5)
        # mitmproxy's own walk looks it up on every event: 5 here
        assert watcher.lookups["request"] == 1
        assert seen == ["a"] * 5
        tctx.master.addons.add(Recorder("b", seen))
        fire(tctx, hook, times=2)
        assert watcher.lookups["request"] == 2
        assert seen[-2:] == ["a", "b"]


def test_hooks_run_in_chain_and_tree_order_and_are_awaited() -> None:
    seen: list[str] = []
    with context(
        Recorder("first", seen),
        Parent(AsyncRecorder("child", seen)),
        Watcher(),
        Recorder("last", seen),
    ) as tctx:
        fire(tctx, HttpRequestHook(tflow.tflow()))
        fire(tctx, HttpResponseHook(tflow.tflow(resp=True)))  # nobody has it
    assert seen == ["first", "child", "last"]


def test_a_failing_hook_is_logged_and_the_next_addon_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # mitmproxy's behaviour, kept: our own addons fail closed by themselves.
    seen: list[str] = []
    with (
        context(Failing(), Recorder("after", seen)) as tctx,
        caplog.at_level(logging.ERROR),
    ):
        fire(tctx, HttpRequestHook(tflow.tflow()))
    assert seen == ["after"]
    assert "Addon error: hook bug" in caplog.text


def test_addon_halt_stops_the_event() -> None:
    seen: list[str] = []
    with context(Recorder("before", seen), Halting(), Recorder("after", seen)) as tctx:
        fire(tctx, HttpRequestHook(tflow.tflow()))
    assert seen == ["before"]


def test_a_removed_addon_is_not_called_and_a_removed_method_is_skipped() -> None:
    seen: list[str] = []
    gone, stays = Recorder("gone", seen), Recorder("stays", seen)
    with context(gone, stays) as tctx:
        hook = HttpRequestHook(tflow.tflow())
        fire(tctx, hook)
        tctx.master.addons.remove(gone)
        fire(tctx, hook)
        stays.request = None  # type: ignore[assignment,method-assign]
        fire(tctx, hook)
    assert seen == ["gone", "stays", "stays"]


def test_a_hook_name_that_is_not_callable_is_an_addon_error_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    with (
        context(NotCallable(), Recorder("after", seen)) as tctx,
        caplog.at_level(logging.ERROR),
    ):
        fire(tctx, HttpRequestHook(tflow.tflow()))
    assert seen == ["after"]
    assert "not callable" in caplog.text


def _hook_with_placeholders(kind: type[hooks.Hook]) -> hooks.Hook:
    values = {field.name: object() for field in dataclasses.fields(kind)}  # type: ignore[arg-type]
    return kind(**values)


def test_args_are_each_hooks_own_fields_in_order() -> None:
    # Importing them registers the addons' and the layers' hooks.
    importlib.import_module("mitmproxy.addons")
    importlib.import_module("mitmproxy.proxy.layers")

    assert len(hooks.all_hooks) > 30
    for kind in hooks.all_hooks.values():
        hook = _hook_with_placeholders(kind)
        assert hook_plans.args(hook) == hook.args(), kind.name
        assert hook_plans.args(hook) == hook.args(), kind.name  # the kept field list too


def test_a_hook_with_its_own_args_is_asked() -> None:
    @dataclasses.dataclass
    class OwnArgsHook(hooks.Hook):
        data: Any
        name = "agentcage_test_own_args"

        def args(self) -> list[Any]:
            return ["own", self.data]

    assert hook_plans.args(OwnArgsHook(1)) == ["own", 1]
