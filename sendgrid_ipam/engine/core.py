"""`Engine`: the one request path every operation takes.

``execute`` builds the request (``_wire``), and then:

- a read, or a write that is safe to resend, sends its first attempt (`Attempt`) and only
  on failure hands over to `Flow` (retries);
- a write whose safety rests on reconciliation first takes its *write lease* from the
  coordinator (so no other writer on the same account, pool name or IPAM account can
  interleave), lets its reconciler note what it needs (the account's newest IP, say), and
  then runs the same way, all within the call's deadline: the reads its checks make inherit
  that deadline (a context variable), so no check gets a fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from yarl import URL

from .. import _wire
from .._observe import Call, HookSink, Observer
from ..coordination import Lease
from ..errors import ClientStateError, SendGridError, TransportError
from ..operations import Operation
from ..retry import RetryBudget
from .attempt import Attempt
from .deadline import OUTER_DEADLINE
from .flow import CallTrace, Flow, Reconciler
from .options import RequestOptions, as_timeout, check_options
from .state import EngineState

__all__ = ["Engine"]

T = TypeVar("T")

_URL_CACHE_SIZE = 1024



class Engine(EngineState):
    """Executes operations for one client: URLs, headers, slots, attempts, retries, leases.

    Built by `SendGridIPAM`; resources call `execute`. Not part of the public API.
    """

    # ---------------------------------------------------------------- the request path

    async def execute(  # noqa: PLR0915 (the one request path, kept in one frame)
        self,
        op: Operation,
        *,
        path: object = None,
        query: Mapping[str, object] | None = None,
        body: Any = None,
        options: RequestOptions | None = None,
        read: Callable[[Any], T] | None = None,
        reconciler: Reconciler | None = None,
        trace: CallTrace | None = None,
        lease: str | None = None,
        reconcile: Callable[[], Reconciler] | None = None,
    ) -> T:
        """Run one operation: the single path every API call takes.

        ``path`` is the value of the operation's one path parameter, if it has one; ``body``
        the request's JSON value, or its JSON already encoded (bytes); ``lease`` the key of
        the write lease the call must hold (see the module docstring). ``reconcile`` builds
        the reconciler of a write whose reconciler has nothing to `prepare`, only once its
        first attempt has failed (a call that succeeds at once never needs one).
        """
        session = self.session
        if session is None:
            raise ClientStateError(
                "the client is closed" if self.closed
                else "use the client as `async with SendGridIPAM(...) as sg:` before calling it"
            )
        if not query and (path is None or type(path) is str):  # url()'s cache hit, inlined
            if (url := self.urls.get((op.operation_id, path))) is None:
                url = self.url(op, path, None)
        else:
            url = self.url(op, path, query)
        headers = self.get_headers if body is None else self.body_headers
        policy, timeout = self.policy, self.request_timeout
        seconds = policy.deadline
        observer = self.observer
        if options:
            check_options(options)
            policy = options.get("retry") or policy
            seconds = options.get("deadline", policy.deadline)
            if "timeout" in options:
                timeout = as_timeout(options["timeout"])
            if (obo := options.get("on_behalf_of")) is not None:
                headers = {**(headers or {}), "On-Behalf-Of": obo}
            if (hook := options.get("on_response")) is not None:  # this call's own
                observer = (observer or Observer(())).with_sink(HookSink(None, hook))
        data = body if body is None or type(body) is bytes else _wire.dump_json(body)
        now = self.clock()
        deadline = now + seconds
        if (outer := OUTER_DEADLINE.get()) is not None and outer < deadline:
            deadline = outer
        total = (timeout or self.timeout).total
        attempt = Attempt(
            self, session, op.operation_id, op.method, url, headers, data, timeout,
            read or op.read, deadline, policy, total is None or deadline - now < total,
        )
        held: Lease | None = None
        holding: AbstractAsyncContextManager[Lease] | None = None
        call = None
        if observer is not None:
            call = attempt.call = observer.start(self, op, url)
        try:
            if lease is not None:  # a write whose checks need it alone on its key
                held = self.coordinator.try_lease(lease)  # uncontended: no await
                if held is None:
                    # Deferred: taken with the first request's gate check (one round trip)
                    holding = self.coordinator.lease(
                        lease, wait=deadline - self.clock(),
                        deferred=reconciler is None or not reconciler.needs_token)
                    held = await self._wait_for_lease(op, holding, call)
                    attempt.capped = True  # time has passed: the deadline may cut the attempt
                if held.losable:
                    attempt.lease = held  # checked before each send (fencing)
                if trace is not None:
                    trace.lease_token = held.token or None
            if reconciler is not None and reconciler.prepares:
                await self._prepare(op, reconciler, held, deadline)
                attempt.capped = True  # likewise after the marker read
            try:
                result: T = await attempt.send()
            except SendGridError as exc:
                exc.operation = op.operation_id
                if reconcile is not None:
                    reconciler = reconcile()
                result = await Flow(op, attempt, reconciler, trace).after(exc)
            else:
                if trace is not None:
                    trace.attempts = 1
            budget = self.budget
            if type(budget) is not RetryBudget or budget.available < budget.capacity:
                budget.on_success()  # (a full in-process budget takes no credit: no call)
            if call is not None:
                call.end(None)
            return result
        except BaseException as exc:
            if call is not None:
                call.end(exc)
            if isinstance(exc, asyncio.CancelledError) and held is not None:
                # Cancelled with the write perhaps sent: it may still land. The next writer
                # on the key must not read its marker before then, or it would take these
                # IPs for its own: the lease is kept for `settle`, in the background.
                self.linger(policy.settle, holding, held)
                holding = held = None
            raise
        finally:
            if holding is not None:
                if trace is not None and held is not None:
                    trace.lease_token = held.token or None  # (a deferred one's, once taken)
                await holding.__aexit__(None, None, None)
            elif held is not None:
                held.release_now()

    def linger(self, seconds: float, holding: AbstractAsyncContextManager[Lease] | None,
               held: Lease) -> None:
        """Release a cancelled write's lease ``seconds`` from now, in the background
        (`close` waits for it)."""

        async def release() -> None:
            try:
                await self.sleep(seconds)
            finally:
                if holding is not None:
                    await holding.__aexit__(None, None, None)
                else:
                    held.release_now()

        task = asyncio.get_running_loop().create_task(release())
        self.lingering.add(task)
        task.add_done_callback(self.lingering.discard)

    async def _wait_for_lease(
        self, op: Operation, holding: AbstractAsyncContextManager[Lease], call: Call | None
    ) -> Lease:
        """Wait for a write lease another call holds (within the call's deadline)."""
        started = self.clock()
        try:
            return await holding.__aenter__()
        except SendGridError as exc:
            exc.operation = op.operation_id
            raise
        finally:
            if call is not None:
                call.waited("lease", self.clock() - started)

    @staticmethod
    async def _prepare(
        op: Operation, reconciler: Reconciler, held: Lease | None, deadline: float
    ) -> None:
        """Let the reconciler note what it needs (a marker) before the write is sent."""
        context = OUTER_DEADLINE.set(deadline)  # its reads end with the write
        try:
            await reconciler.prepare(None if held is None else held.token)
        except SendGridError as exc:  # nothing was written: report this operation
            exc.operation = op.operation_id
            if isinstance(exc, TransportError):
                exc.request_sent = False  # the write's request, that is: never sent
            raise
        finally:
            OUTER_DEADLINE.reset(context)

    def url(self, op: Operation, path: object, query: Mapping[str, object] | None) -> URL:
        """The request's URL; reused for the same operation and path when there is no query.

        aiohttp reads a URL's host, port, origin and path on every request and yarl caches
        those on the object, so reusing it (and skipping the encoding) saves real time.
        Only text path values are cached, so that ``True`` can never pass for ``1``.
        """
        cacheable = not query and (path is None or type(path) is str)
        if cacheable and (url := self.urls.get((op.operation_id, path))) is not None:
            return url
        text = (self.global_base if op.global_only else self.base_url) + op.render(path)
        if query and (encoded := _wire.encode_query(query)):
            text = f"{text}?{encoded}"
        url = URL(text, encoded=True)
        if cacheable:
            if len(self.urls) >= _URL_CACHE_SIZE:
                self.urls.clear()  # rare, and a miss costs only the encoding
            self.urls[op.operation_id, path] = url
        return url
