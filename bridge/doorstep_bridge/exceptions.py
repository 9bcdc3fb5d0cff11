"""The bridge's small exception tree: callers catch the branch they can handle."""


class DoorstepError(Exception):
    """Base class of every error the bridge raises on purpose."""


class ConfigError(DoorstepError):
    """The configuration file is missing, unreadable or invalid.

    Attributes:
        problems: One line per problem, each naming the key path.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class CameraError(DoorstepError):
    """A camera source could not be opened or stopped delivering."""


class ListenError(DoorstepError):
    """The HTTP API's address cannot be listened on (in use, not this host's, not allowed)."""


class StorageError(DoorstepError):
    """The clip store or another on-disk structure failed (disk full, corrupt index)."""


class ShareError(DoorstepError):
    """A share request or decision was rejected; the message says why."""


class AuditError(DoorstepError):
    """The audit log could not be written or does not verify."""


class IgnoredMessageError(DoorstepError):
    """An incoming MQTT message was not acted on; the message says why.

    Raised by MQTT handlers; the client logs it, rate-limited per subscription
    and `kind`, so a flood of garbage cannot flood the log.

    Attributes:
        kind: What went wrong, without details from the message itself (a
            camera name, a size), so one kind of garbage is one log key.
    """

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind if kind is not None else message
