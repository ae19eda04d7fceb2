"""contract-bot: answers questions about the 互联网产品售后支持协议 from its own words."""

from __future__ import annotations

__version__ = "0.1.0"
