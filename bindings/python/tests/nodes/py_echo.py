"""Test node: sends every input back out on `out`, value and metadata unchanged."""
from dora import Node

node = Node()
for event in node:
    if event["type"] == "INPUT":
        node.send_output("out", event["value"], event["metadata"])
