"""The protocol facts and the error catalogue of dora-ts, for Python.

GENERATED from protocol/facts.json by scripts/generate-facts.ts (npm run facts). Do not edit.
"""

from __future__ import annotations

VERSION = "0.1.0"
PROTOCOL_VERSION = 1
MAGIC = b"DORA"
MAX_PARAMETERS = 4096  # Parameters per message, at most.
MAX_DEPTH = 64  # Nesting levels of an Arrow layout (and of a value to infer a type from), at most.
MAX_DROP_TOKEN_ENTRIES = 1048576  # Sample ids, and lost ranges, per drop-token frame, at most.
BUFFER_ALIGNMENT = 64  # Every buffer of a payload starts at a multiple of this many bytes.
SHARED_MEMORY_THRESHOLD = 4096  # Default of the dataflow's shared_memory_threshold: payloads of at least this many bytes travel through shared memory.
SEGMENT_NAME_MAX = 200  # Bytes of a shared-memory segment name, at most.
SEGMENT_PREFIX = "dora-ts-"
EVENTS_TOPIC_PREFIX = "dora/events/"
NODE_CONFIG_ENV = "DORA_NODE_CONFIG"
EVENT_TYPES = ("STOP", "INPUT", "INPUT_CLOSED", "ERROR", "UNKNOWN", "INPUT_RECOVERED", "NODE_RESTARTED", "NODE_FAILED")  # indexed by enum DoraEventType
STOP_CAUSES = ("MANUAL", "ALL_INPUTS_CLOSED")
LOG_LEVELS = ("error", "warn", "info", "debug", "trace")
PARAMETER_TAGS = {"BOOL": 1, "INT": 2, "FLOAT": 3, "STRING": 4, "LIST_BOOL": 5, "LIST_INT": 6, "LIST_FLOAT": 7, "LIST_STRING": 8, "TIMESTAMP": 9}
NODE_CONFIG_FIELDS = ("protocolVersion", "dataflowId", "nodeId", "daemonPid", "daemonStartTime", "dynamic", "daemonRequests", "daemonEvents", "dataEndpoint", "dropEndpoint", "sharedMemoryThreshold", "segmentPrefix", "outputs", "subscribers", "inputs", "nodeDescriptor", "dataflowDescriptorFile", "restartCount", "outputTypes", "healthCheckTimeoutMs", "remote")
ERROR_NAMES = {0: "OK", 1: "NO_CONTEXT", 2: "INVALID_ARGUMENT", 3: "OUT_OF_MEMORY", 4: "CONFIG", 5: "PROTOCOL_VERSION", 6: "DAEMON_GONE", 7: "UNDECLARED_OUTPUT", 8: "MALFORMED_MESSAGE", 9: "SHARED_MEMORY", 10: "TIMEOUT", 11: "REGISTRATION", 12: "ZMQ", 13: "UNSUPPORTED_TYPE", 14: "PARAMETER", 15: "SYSTEM", 16: "USAGE", 17: "DESCRIPTOR", 18: "NODE", 19: "CONTROL", 20: "LIBRARY"}


class DoraError(Exception):
    """Base of the errors dora raises: ``code`` is the error's number in the catalogue, ``code_name`` its name."""

    code: int = 0
    code_name: str = "OK"

    def __init__(self, *args: object, code: int | None = None) -> None:
        super().__init__(*args)
        if code is not None:
            self.code = code
            self.code_name = ERROR_NAMES.get(code, "UNKNOWN")


class NoContextError(DoraError, RuntimeError):
    """NO_CONTEXT (1): No open context: NULL, or the node is closed."""

    code = 1
    code_name = "NO_CONTEXT"


class InvalidArgumentError(DoraError, ValueError):
    """INVALID_ARGUMENT (2): An argument is NULL, out of range or malformed."""

    code = 2
    code_name = "INVALID_ARGUMENT"


class OutOfMemoryError(DoraError, MemoryError):
    """OUT_OF_MEMORY (3): Memory could not be allocated."""

    code = 3
    code_name = "OUT_OF_MEMORY"


class ConfigError(DoraError, RuntimeError):
    """CONFIG (4): The node configuration (DORA_NODE_CONFIG) is missing, not JSON, or incomplete; or a dynamic node found no running dataflow to join (none declares it, several do, or its daemon refused)."""

    code = 4
    code_name = "CONFIG"


class ProtocolVersionError(DoraError, RuntimeError):
    """PROTOCOL_VERSION (5): A peer speaks another protocol version."""

    code = 5
    code_name = "PROTOCOL_VERSION"


class DaemonGoneError(DoraError, RuntimeError):
    """DAEMON_GONE (6): The node's daemon went away."""

    code = 6
    code_name = "DAEMON_GONE"


class UndeclaredOutputError(DoraError, ValueError):
    """UNDECLARED_OUTPUT (7): The output is not one the node declared."""

    code = 7
    code_name = "UNDECLARED_OUTPUT"


class MalformedMessageError(DoraError, RuntimeError):
    """MALFORMED_MESSAGE (8): A frame failed the protocol's checks."""

    code = 8
    code_name = "MALFORMED_MESSAGE"


class SharedMemoryError(DoraError, RuntimeError):
    """SHARED_MEMORY (9): A shared-memory segment could not be created, opened or mapped, or a payload lies outside it."""

    code = 9
    code_name = "SHARED_MEMORY"


class DoraTimeoutError(DoraError, RuntimeError):
    """TIMEOUT (10): A wait ran out of time."""

    code = 10
    code_name = "TIMEOUT"


class RegistrationError(DoraError, RuntimeError):
    """REGISTRATION (11): The daemon refused the node, or answered its registration with nonsense."""

    code = 11
    code_name = "REGISTRATION"


class ZmqError(DoraError, RuntimeError):
    """ZMQ (12): A ZeroMQ call failed."""

    code = 12
    code_name = "ZMQ"


class UnsupportedTypeError(DoraError, RuntimeError):
    """UNSUPPORTED_TYPE (13): An Arrow type or a value that cannot be sent."""

    code = 13
    code_name = "UNSUPPORTED_TYPE"


class ParameterError(DoraError, RuntimeError):
    """PARAMETER (14): A metadata parameter is missing, has another type, or has no such element."""

    code = 14
    code_name = "PARAMETER"


class DoraSystemError(DoraError, RuntimeError):
    """SYSTEM (15): A system call failed."""

    code = 15
    code_name = "SYSTEM"


class UsageError(DoraError, RuntimeError):
    """USAGE (16): A call the API does not allow in this state (a second pending next(), a sample sent twice)."""

    code = 16
    code_name = "USAGE"


class DescriptorError(DoraError, RuntimeError):
    """DESCRIPTOR (17): The dataflow descriptor is invalid."""

    code = 17
    code_name = "DESCRIPTOR"


class NodeError(DoraError, RuntimeError):
    """NODE (18): A node could not be built or spawned, or failed while the dataflow ran."""

    code = 18
    code_name = "NODE"


class ControlError(DoraError, RuntimeError):
    """CONTROL (19): The CLI could not reach the coordinator, or the coordinator refused the request."""

    code = 19
    code_name = "CONTROL"


class LibraryError(DoraError, RuntimeError):
    """LIBRARY (20): The native node library was not found or could not be loaded."""

    code = 20
    code_name = "LIBRARY"


ERRORS: dict[int, type[DoraError]] = {1: NoContextError, 2: InvalidArgumentError, 3: OutOfMemoryError, 4: ConfigError, 5: ProtocolVersionError, 6: DaemonGoneError, 7: UndeclaredOutputError, 8: MalformedMessageError, 9: SharedMemoryError, 10: DoraTimeoutError, 11: RegistrationError, 12: ZmqError, 13: UnsupportedTypeError, 14: ParameterError, 15: DoraSystemError, 16: UsageError, 17: DescriptorError, 18: NodeError, 19: ControlError, 20: LibraryError}


# Shown (and pickled) as dora.X: the package exports them all.
for _cls in (DoraError, *ERRORS.values()):
    _cls.__module__ = "dora"


def make_error(code: int, message: str) -> DoraError:
    """The exception for a failure with this code (the native module raises what this returns)."""
    cls = ERRORS.get(code)
    return cls(message) if cls is not None else DoraError(message, code=code)


__all__ = ("DoraError", "NoContextError", "InvalidArgumentError", "OutOfMemoryError", "ConfigError", "ProtocolVersionError", "DaemonGoneError", "UndeclaredOutputError", "MalformedMessageError", "SharedMemoryError", "DoraTimeoutError", "RegistrationError", "ZmqError", "UnsupportedTypeError", "ParameterError", "DoraSystemError", "UsageError", "DescriptorError", "NodeError", "ControlError", "LibraryError")
