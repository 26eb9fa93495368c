"""Misuses the stubs must catch (tests/test_typing.py expects one error per marked line)."""

from __future__ import annotations

from dora import Node

node = Node()
node.send_output(1, b"x")  # E: arg-type
node.send_output("out", b"x", {"nested": {"a": 1}})  # E: dict-item
event = node.next()
if event is not None:
    print(event["value"])  # E: typeddict-item
node.next(timeout="soon")  # E: arg-type
