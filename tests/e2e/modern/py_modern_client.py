#!/usr/bin/env python3
"""End-to-end check of the hub's MCP 2026-07-28 (stateless) path with the official
Python SDK 2.x (`mcp.Client`, dual-era: it probes `server/discover` first).

    python py_modern_client.py URL [--prefix demo__] [--timeout 60]

Steps: connect (must negotiate 2026-07-28, not fall back to initialize), tools/list must
contain echo, tools/call echo, then the demo's `test_elicitation` tool: the hub turns the
legacy upstream's elicitation/create into an input_required result, the SDK calls our
elicitation callback and retries with inputResponses + requestState; the answer must
echo what the callback returned.

Prints one JSON line (`"ok": true|false`); on failure `py_modern_client: FAIL: <step>:
<reason>` on stderr and exit 1 (3 on the overall timeout).
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import metadata

import anyio
from mcp import Client, types


def fail(step: str, reason: str) -> None:
    print(json.dumps({"ok": False, "step": step, "reason": reason}))
    print(f"py_modern_client: FAIL: {step}: {reason}", file=sys.stderr)
    sys.exit(1)


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def run(url: str, prefix: str) -> dict:
    asked: list[str] = []

    async def on_elicit(_ctx, params):  # noqa: ANN001 - SDK callback signature
        asked.append(getattr(params, "message", ""))
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    async with Client(url, elicitation_callback=on_elicit, cache=None) as client:
        version = client.protocol_version
        if version != "2026-07-28":
            fail("connect", f"negotiated {version!r}, expected the stateless 2026-07-28")
        tools = await client.list_tools()
        names = [t.name for t in tools.tools]
        if f"{prefix}echo" not in names:
            fail("tools/list", f"{prefix}echo missing from {names[:20]}")
        r = await client.call_tool(f"{prefix}echo", {"text": "modern-python"})
        if text_of(r) != "modern-python":
            fail("tools/call echo", repr(r))
        r = await client.call_tool(f"{prefix}test_elicitation", {"message": "Who are you?"})
        text = text_of(r)
        if not asked or asked[0] != "Who are you?":
            fail("elicitation", f"callback not called with the upstream's message: {asked!r}")
        if "ada" not in text or "accept" not in text:
            fail("elicitation", f"answer does not carry the client's input: {text!r}")
        return {"ok": True, "sdk": metadata.version("mcp"), "protocol": version, "tools": len(names), "elicitation": text}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--prefix", default="")
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()

    async def bounded() -> dict | None:
        with anyio.move_on_after(a.timeout):
            return await run(a.url, a.prefix)
        return None

    out = anyio.run(bounded)
    if out is None:
        print(json.dumps({"ok": False, "step": "timeout"}))
        print(f"py_modern_client: FAIL: timeout after {a.timeout} s", file=sys.stderr)
        sys.exit(3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
