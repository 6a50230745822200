"""Errors of the real-time reader."""

from __future__ import annotations


class ZombiReadError(Exception):
    """Base class of the reader's own errors."""


class SnapshotTooOld(ZombiReadError):
    """The node answered 410 Gone: the scanned snapshot's watermarks are below what the hot
    store still keeps. The reader reloads the table and plans again."""


class HotUnavailable(ZombiReadError):
    """The node's hot-segment API could not be read (down, hanging, overloaded for too long,
    or an unexpected answer). The reader returns the committed rows only."""


class NodeUnavailable(ZombiReadError):
    """Neither the node nor the warehouse pointer could give the table's metadata."""
