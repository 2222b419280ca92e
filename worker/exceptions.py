"""Errors of the worker package, named for what the caller must do.

- ``RetryLater``: transient (throttling, 5xx, a dropped connection); leave the message to come back.
  ``QueueCallFailed``, its branch for the job queue: a call to the queue or its DLQ failed.
- ``SettleWithError``: the video can never succeed; publish an error verdict with ``code`` and delete.
- ``PoisonMessage``: the body is not a job at all; send it to the dead-letter queue and delete.
- ``AbortStartup``: configuration or environment is wrong; stop before receiving anything.
  ``AwsSettingRejected`` is the case where AWS itself refuses a setting (no such queue or topic in
  the region, unknown or missing credentials, access denied).
- ``AwsUnavailable``: AWS cannot be reached, or keeps failing past the worker's bounded time; exit 3
  (service unavailable) for the supervisor to try a fresh process later.
- ``ReplicaDied``: a replica thread ended with an exception; stop receiving, release what is held
  and exit non-zero, for the supervisor (systemd) to start a fresh process.
"""

from __future__ import annotations


class ModfleetError(Exception):
    """Root of every error modfleet raises on purpose."""


class AbortStartup(ModfleetError):
    """The worker cannot start: fix the configuration or the environment."""


class SettingsError(AbortStartup):
    """A setting is missing, malformed, or outside its limit; the message names the limit."""


class AwsSettingRejected(SettingsError):
    """AWS refuses what a setting names: the message names the setting, its value and the region."""


class AwsUnavailable(ModfleetError):
    """AWS could not be reached, or refused the worker for longer than its bound: exit 3."""


class RetryLater(ModfleetError):
    """A transient failure: do not delete the message, let its visibility lapse or release it."""


class QueueCallFailed(RetryLater):
    """A call to the queue failed as a whole (unreachable, throttled, a stale receipt handle).

    ``operation`` names the call and ``code`` the queue's error code ("" when no answer came);
    whatever the call was about comes back when its visibility lapses.
    """

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code or 'no answer'}: {message}")
        self.operation = operation
        self.code = code


class SettleWithError(ModfleetError):
    """The video can never succeed: publish an error verdict carrying ``code``, then delete."""

    codes = frozenset({"object_missing", "too_large", "not_a_video", "undecodable", "too_long",
                       "too_many_pixels", "model_error", "decode_timeout"})

    def __init__(self, code: str, message: str) -> None:
        if code not in self.codes:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PoisonMessage(ModfleetError):
    """The message body is not any accepted format: dead-letter it with ``reason`` and delete."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReplicaDied(ModfleetError):
    """A replica thread ended with an exception: this process can no longer run the model.

    Its clips fail with this error and their messages are released at once; the worker stops
    receiving and exits with code 3 so that its supervisor restarts it.
    """
