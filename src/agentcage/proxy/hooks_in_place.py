"""Hooks whose addons are all plain functions run in place, not in a task (mitmproxy 11.0.2).

For every `StartHook` a layer yields, mitmproxy's `ConnectionHandler.server_event`
makes an asyncio task that runs the hook through the addons (then `update` for a flow)
and, when done, feeds `HookCompleted` back through the layer stack. Most hooks of a
connection reach only addons that are plain functions (`next_layer`, the TLS hooks,
`requestheaders`, `responseheaders`, `response`): for those the task adds its creation,
a turn of the event loop and a second `server_event` to every hook, on the path of
every request (about 0.1 ms of the proxy's CPU per new connection).

`InPlaceHooks` wraps the connection's top layer. A hook that qualifies is run once the
layer's commands for the event being handled are all dispatched, never from inside
that walk (the layer generators are still running then), and its `HookCompleted` is fed
in right after: where mitmproxy's task would have run had asyncio run it first. The
addons run as mitmproxy runs them (`hook_plans`: chain order, each top-level addon in
`safecall`, `AddonHalt` ends the hook), then `update` for a flow. A hook qualifies when
every addon function it reaches, and `update`'s for a flow, is a plain function, and it
takes its one argument as mitmproxy's handler requires. Every other hook (the request
gate's and the pool's `request`, both `async`) takes mitmproxy's task as before. Should
a plain function still return something to await, or an addon intercept the flow, the
rest of that hook goes on in a task, which then feeds the completion as mitmproxy's does.
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Generator
from typing import Any

from mitmproxy import exceptions, flow, hooks
from mitmproxy.addonmanager import AddonManager, safecall
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.mode_servers import ProxyConnectionHandler
from mitmproxy.utils import asyncio_utils

from agentcage.proxy import hook_plans
from agentcage.proxy.mitmproxy_pin import patches_mitmproxy

_PLAIN = "_agentcage_plain_hooks"
_UPDATE = hooks.UpdateHook([])


@patches_mitmproxy
def install() -> None:
    """Patch `ProxyConnectionHandler.handle_client` to wrap each connection's top layer."""
    hook_plans.install()
    original = ProxyConnectionHandler.handle_client

    async def handle_client(self: ProxyConnectionHandler) -> None:
        self.layer = InPlaceHooks(self.layer, self)  # type: ignore[assignment]
        await original(self)

    ProxyConnectionHandler.handle_client = handle_client  # type: ignore[method-assign,assignment]


def _plain(addons: AddonManager, hook: hooks.Hook) -> bool:
    """Whether every addon function `hook` reaches is a plain function, answered once
    per plan (`hook_plans` makes a new one whenever the addons change)."""
    plan = hook_plans.plan(addons, hook)
    known: dict[str, tuple[hook_plans.Plan, bool]] = addons.__dict__.setdefault(_PLAIN, {})
    found = known.get(hook.name)
    if found is None or found[0] is not plan:
        plain = all(
            not inspect.iscoroutinefunction(getattr(addon, hook.name, None))
            for _, having in plan
            for addon in having
        )
        found = known[hook.name] = (plan, plain)
    return found[1]


def in_place(addons: AddonManager, hook: commands.StartHook) -> bool:
    """Whether `hook` may run in place: blocking, one argument, plain addons only."""
    if not hook.blocking:
        return False
    args = hook_plans.args(hook)
    if len(args) != 1:
        return False
    if not _plain(addons, hook):
        return False
    data = args[0]
    if isinstance(data, flow.Flow):
        return not data.intercepted and _plain(addons, _UPDATE)
    return True


class InPlaceHooks:
    """The connection's top layer, with qualifying hooks run in place."""

    def __init__(self, top: layer.Layer, handler: ProxyConnectionHandler) -> None:
        self.top = top
        self.handler = handler

    def __getattr__(self, name: str) -> Any:
        return getattr(self.top, name)

    def handle_event(self, event: events.Event) -> Generator[commands.Command, Any, None]:
        addons = self.handler.master.addons
        pending: deque[events.Event | commands.StartHook] = deque([event])
        while pending:
            item = pending.popleft()
            if isinstance(item, commands.StartHook):
                if not self._run(item):
                    continue  # it went on in a task, which feeds its completion
                item = events.HookCompleted(item)
            try:
                for command in self.top.handle_event(item):
                    if isinstance(command, commands.StartHook) and in_place(addons, command):
                        pending.append(command)
                    else:
                        yield command
            except GeneratorExit:
                # The handler stopped reading commands (it crashed on one): what is owed
                # goes through its own tasks, as mitmproxy's would.
                for owed in pending:
                    self._in_task(
                        self.handler.hook_task(owed)
                        if isinstance(owed, commands.StartHook)
                        else self.handler.server_event(owed)
                    )
                raise
            except Exception:
                if not pending:
                    raise  # mitmproxy's server_event logs it
                self.handler.log("mitmproxy has crashed!", logging.ERROR, exc_info=True)

    def _run(self, hook: commands.StartHook) -> bool:
        """Run `hook` (and `update` for a flow) through the addons; False if it had to
        go on in a task."""
        (data,) = hook_plans.args(hook)
        addons = self.handler.master.addons
        rounds: list[hooks.Hook] = [hook]
        if isinstance(data, flow.Flow):
            rounds.append(hooks.UpdateHook([data]))
        for index, event in enumerate(rounds):
            name, args = event.name, hook_plans.args(event)
            tops = [having for _, having in hook_plans.plan(addons, event)]
            # `hook_plans.run`, without awaiting: an awaitable sends the rest to a task.
            for place, having in enumerate(tops):
                try:
                    with safecall():
                        for at, addon in enumerate(having):
                            func = getattr(addon, name, None)
                            if not callable(func):
                                continue
                            result = func(*args)
                            if result is not None and inspect.isawaitable(result):
                                rest = [having[at + 1 :], *tops[place + 1 :]]
                                later = rounds[index + 1 :]
                                self._in_task(self._rest(hook, event, result, rest, later))
                                return False
                except exceptions.AddonHalt:
                    break
        if isinstance(data, flow.Flow) and data.intercepted:
            self._in_task(self._resumed(hook, data))
            return False
        return True

    async def _rest(
        self,
        hook: commands.StartHook,
        event: hooks.Hook,
        awaited: Any,
        rest: list[list[Any]],
        later: list[hooks.Hook],
    ) -> None:
        halted = done = False
        try:
            with safecall():
                await awaited
                done = True
        except exceptions.AddonHalt:
            halted = True
        if not halted:
            # An error ends its own top-level addon's turn, as in `safecall`.
            await hook_plans.run(rest if done else rest[1:], event.name, hook_plans.args(event))
        addons = self.handler.master.addons
        for more in later:
            await addons.trigger_event(more)
        (data,) = hook_plans.args(hook)
        if isinstance(data, flow.Flow):
            await data.wait_for_resume()  # type: ignore[no-untyped-call]
        await self.handler.server_event(events.HookCompleted(hook))

    async def _resumed(self, hook: commands.StartHook, data: flow.Flow) -> None:
        await data.wait_for_resume()  # type: ignore[no-untyped-call]
        await self.handler.server_event(events.HookCompleted(hook))

    def _in_task(self, coro: Any) -> None:
        task = asyncio_utils.create_task(
            coro, name="a hook run in place", client=self.handler.client.peername
        )
        self.handler.hook_tasks.add(task)
        task.add_done_callback(self.handler.hook_tasks.discard)
