"""Test node written as dora code is: `while True: event = node.next(timeout=...)`, ending
at None. Records every event's type (and error) to RECORD as JSON lines."""
import json
import os

from dora import Node

node = Node()
with open(os.environ["RECORD"], "w") as out:
    while True:
        event = node.next(timeout=0.1)
        if event is None:
            break
        out.write(json.dumps({"type": event["type"], "error": event.get("error")}) + "\n")
    out.write(json.dumps({"type": "END"}) + "\n")
