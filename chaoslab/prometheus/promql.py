"""One parse of each PromQL expression per process.

A rule's expression is read by validation, service binding, the hypothesis's comparison,
batching and burn-rate analysis: each would otherwise parse it again (about 60 µs each, 50
parses for the sample shop before its first fault). The trees are only read, never changed,
so one tree serves every reader.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import promql_parser


@lru_cache(maxsize=4096)
def parse(expr: str) -> Any:
    """The syntax tree of ``expr``; ValueError (not cached) when it is not PromQL."""
    return promql_parser.parse(expr)
