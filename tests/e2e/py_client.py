#!/usr/bin/env python3
"""End-to-end check of an MCP endpoint with the official Python SDK (`mcp`).

    python py_client.py URL [--prefix demo__] [--transport streamable|sse]
                            [--profile hub|everything] [--resource URI]
                            [--expect-deleted-status CODE|any] [--allow-transport-errors]
                            [--timeout 30]

Same steps as ts_client.mjs: initialize, tools/list (all pages) must contain the
echo and sleep tools, tools/call echo (text must match), tools/call sleep with a
progress callback (>= 2 notifications/progress), resources/read, prompts/get,
then for Streamable HTTP a DELETE of the session and a raw POST with the deleted
session id, whose HTTP status must be 404 per the spec (profile hub).

Prints exactly one JSON line on stdout (`"ok": true|false`). On failure it also
prints `py_client: FAIL: <step>: <reason>` on stderr and exits 1 (2 for bad
usage, 3 for the overall timeout).

Progress: `ClientSession.call_tool(..., progress_callback=...)` exists in the
pinned SDK (mcp 1.30.0); the SDK then sets `_meta.progressToken` on the request
and routes matching `notifications/progress` to the callback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import timedelta
from importlib import metadata
from typing import Any

import anyio
import httpx
from mcp import ClientSession, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from pydantic import AnyUrl

PROFILES: dict[str, dict[str, Any]] = {
    "hub": {
        "echo_tool": "echo",
        "echo_args": lambda text: {"text": text},
        "echo_expect": lambda text: text,
        "sleep_tool": "sleep",
        "sleep_args": {"ms": 400},
        "resource": "test://static-text",
        "prompt": "test_simple_prompt",
        "prompt_args": {},
        # The hub must answer 404 on a deleted session (spec; shared/conformance.md).
        "deleted_status": "404",
    },
    "everything": {
        "echo_tool": "echo",
        "echo_args": lambda text: {"message": text},
        "echo_expect": lambda text: f"Echo: {text}",
        "sleep_tool": "trigger-long-running-operation",
        "sleep_args": {"duration": 1, "steps": 4},
        "resource": "demo://resource/static/document/architecture.md",
        "prompt": "simple-prompt",
        "prompt_args": {},
        "deleted_status": "any",  # server-everything answers 400 (known deviation)
    },
}

REQUEST_TIMEOUT = timedelta(seconds=15)


class AssertionFailed(Exception):
    pass


def check(cond: object, msg: str) -> None:
    if not cond:
        raise AssertionFailed(msg)


class ErrorCollector(logging.Handler):
    """The SDK logs background transport failures (GET stream errors, failed
    DELETE, unparsable events) instead of raising them; collect them so a
    broken server-side stream does not go unnoticed."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.errors: list[str] = []
        self.active = True

    def emit(self, record: logging.LogRecord) -> None:
        if not self.active:
            return
        msg = record.getMessage()
        if record.levelno >= logging.WARNING or "stream error" in msg:
            self.errors.append(f"{record.name}: {msg}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--prefix", default="")
    p.add_argument("--transport", choices=["streamable", "sse"], default="streamable")
    p.add_argument("--profile", choices=sorted(PROFILES), default="hub")
    p.add_argument("--resource", default=None)
    p.add_argument("--expect-deleted-status", default=None)
    p.add_argument("--allow-transport-errors", action="store_true")
    p.add_argument("--timeout", type=float, default=30.0, help="overall timeout in seconds")
    return p.parse_args(argv)


def text_of(content: list[Any]) -> str:
    return "".join(c.text for c in content if isinstance(c, types.TextContent))


async def run(opts: argparse.Namespace, summary: dict[str, Any], state: dict[str, Any], collector: ErrorCollector) -> None:
    profile = PROFILES[opts.profile]
    received: list[Exception] = []

    async def message_handler(message: Any) -> None:
        # Exceptions the transport pushes into the session end up here.
        if isinstance(message, Exception) and collector.active:
            received.append(message)

    def transport_errors() -> list[str]:
        return collector.errors + [f"{type(e).__name__}: {e}" for e in received]

    http = httpx.AsyncClient(timeout=httpx.Timeout(15.0, read=60.0))
    async with http:
        if opts.transport == "sse":
            # sse_client builds its own httpx client.
            cm = sse_client(opts.url, timeout=15, sse_read_timeout=60)
        else:
            # terminate_on_close=False: the DELETE is sent (and checked) below.
            cm = streamable_http_client(opts.url, http_client=http, terminate_on_close=False)
        async with cm as streams:
            read_stream, write_stream = streams[0], streams[1]
            get_session_id = streams[2] if len(streams) > 2 else (lambda: None)
            async with ClientSession(
                read_stream,
                write_stream,
                read_timeout_seconds=REQUEST_TIMEOUT,
                message_handler=message_handler,
                client_info=types.Implementation(name="mcp-hub-e2e-py", version="0.1.0"),
            ) as session:
                state["step"] = "initialize"
                init = await session.initialize()
                summary["server_info"] = {"name": init.serverInfo.name, "version": init.serverInfo.version}
                summary["protocol_version"] = init.protocolVersion
                session_id = get_session_id()
                summary["session_id_present"] = bool(session_id)
                check(init.capabilities.tools is not None, "server did not declare the tools capability")

                state["step"] = "tools/list"
                names: list[str] = []
                cursor: str | None = None
                pages = 0
                while True:
                    page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
                    names.extend(t.name for t in page.tools)
                    pages += 1
                    cursor = page.nextCursor
                    check(pages <= 100, "tools/list pagination did not end after 100 pages")
                    if not cursor:
                        break
                summary["tools_count"] = len(names)
                summary["tools_pages"] = pages
                echo_name = f"{opts.prefix}{profile['echo_tool']}"
                sleep_name = f"{opts.prefix}{profile['sleep_tool']}"
                check(echo_name in names, f"tool {echo_name} missing from tools/list ({len(names)} tools: {', '.join(names[:20])})")
                check(sleep_name in names, f"tool {sleep_name} missing from tools/list")

                state["step"] = "tools/call echo"
                text = f"hello from py {os.getpid()} \u2713"
                echo = await session.call_tool(echo_name, profile["echo_args"](text), read_timeout_seconds=REQUEST_TIMEOUT)
                check(not echo.isError, f"echo returned isError: {echo.content!r}")
                got = text_of(echo.content)
                want = profile["echo_expect"](text)
                check(got == want, f"echo text {got!r} != {want!r}")
                summary["echo"] = "ok"

                state["step"] = "tools/call sleep (progress)"
                progress: list[float] = []

                async def on_progress(value: float, total: float | None, message: str | None) -> None:
                    progress.append(value)

                slept = await session.call_tool(
                    sleep_name,
                    profile["sleep_args"],
                    read_timeout_seconds=REQUEST_TIMEOUT,
                    progress_callback=on_progress,
                )
                check(not slept.isError, f"sleep returned isError: {slept.content!r}")
                summary["progress_notifications"] = len(progress)
                check(len(progress) >= 2, f"expected >= 2 progress notifications, got {len(progress)}")
                check(
                    all(b > a for a, b in zip(progress, progress[1:])),
                    f"progress not strictly increasing: {progress}",
                )

                state["step"] = "resources/read"
                uri = opts.resource or profile["resource"]
                res = await session.read_resource(AnyUrl(uri))
                check(res.contents, f"resources/read {uri} returned no contents")
                first = res.contents[0]
                check(
                    isinstance(first, types.TextResourceContents) and first.text,
                    f"resources/read {uri}: first content has no text",
                )
                summary["resource_text_len"] = len(first.text)

                state["step"] = "prompts/get"
                prompt_name = f"{opts.prefix}{profile['prompt']}"
                prompt = await session.get_prompt(prompt_name, profile["prompt_args"])
                check(prompt.messages, f"prompt {prompt_name} returned no messages")
                summary["prompt_messages"] = len(prompt.messages)

                summary["transport_errors"] = transport_errors()
                if not opts.allow_transport_errors:
                    check(not summary["transport_errors"], f"transport reported errors: {' | '.join(summary['transport_errors'])}")

                if opts.transport == "streamable" and session_id:
                    collector.active = False
                    headers = {"mcp-session-id": session_id, "mcp-protocol-version": init.protocolVersion}
                    state["step"] = "terminate session (DELETE)"
                    resp = await http.delete(opts.url, headers=headers)
                    summary["delete_status"] = resp.status_code
                    check(resp.status_code in (200, 202, 204, 405), f"DELETE answered HTTP {resp.status_code}")
                    summary["terminated"] = resp.status_code != 405

                    state["step"] = "request on deleted session"
                    resp = await http.post(
                        opts.url,
                        headers={
                            **headers,
                            "content-type": "application/json",
                            "accept": "application/json, text/event-stream",
                        },
                        json={"jsonrpc": "2.0", "id": "after-delete", "method": "ping"},
                        timeout=5.0,
                    )
                    await resp.aclose()
                    summary["deleted_session_status"] = resp.status_code
                    want_status = opts.expect_deleted_status or profile["deleted_status"]
                    if want_status != "any":
                        check(
                            str(resp.status_code) == want_status,
                            f"request on a deleted session got HTTP {resp.status_code}, expected {want_status}",
                        )

                state["step"] = "close"
                collector.active = False


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    started = time.monotonic()
    try:
        sdk_version = metadata.version("mcp")
    except metadata.PackageNotFoundError:
        sdk_version = "unknown"
    summary: dict[str, Any] = {
        "ok": False,
        "client": "py-sdk",
        "sdk_version": sdk_version,
        "transport": opts.transport,
        "profile": opts.profile,
        "url": opts.url,
        "prefix": opts.prefix,
    }
    state = {"step": "start"}
    collector = ErrorCollector()
    mcp_logger = logging.getLogger("mcp")
    mcp_logger.setLevel(logging.DEBUG)
    mcp_logger.addHandler(collector)
    mcp_logger.propagate = False  # keep stdout/stderr clean; errors go in the summary

    async def guarded() -> None:
        with anyio.fail_after(opts.timeout):
            await run(opts, summary, state, collector)

    code = 0
    error: str | None = None
    try:
        anyio.run(guarded)
    except TimeoutError:
        code, error = 3, f"overall timeout of {opts.timeout:g} s exceeded"
    except AssertionFailed as e:
        code, error = 1, str(e)
    except BaseException as e:  # noqa: BLE001 - report anything, incl. ExceptionGroup from anyio
        code, error = 1, describe(e)
        if isinstance(e, KeyboardInterrupt):
            code = 130

    summary["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    if code == 0:
        summary["ok"] = True
    else:
        summary["failed_step"] = state["step"]
        summary["error"] = error
        summary.setdefault("transport_errors", collector.errors)
        print(f"py_client: FAIL: {state['step']}: {error}", file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False), flush=True)
    return code


def describe(e: BaseException) -> str:
    """Flatten anyio/asyncio exception groups into one readable line."""
    if isinstance(e, BaseExceptionGroup):
        inner = [describe(x) for x in e.exceptions]
        return "; ".join(inner)
    if isinstance(e, AssertionFailed):
        return str(e)
    cause = f" (cause: {e.__cause__})" if e.__cause__ and str(e.__cause__) != str(e) else ""
    return f"{type(e).__name__}: {e}{cause}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
