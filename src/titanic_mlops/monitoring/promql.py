"""The names exported metrics get in Cloud Monitoring, and PromQL rewritten to use them.

A Prometheus family becomes one custom metric type: a counter as exposed
(``custom.googleapis.com/titanic_requests_total``), a gauge under its name, a histogram as
one DISTRIBUTION (``custom.googleapis.com/titanic_request_duration_seconds``). Cloud
Monitoring's PromQL names a metric type by replacing the first ``/`` with ``:`` and every
other ``.`` or ``/`` with ``_``, and queries a DISTRIBUTION like a Prometheus histogram
(``_bucket``, ``_count``, ``_sum``). :func:`rewrite` applies that to an expression's metric
names only, never to label names, functions or strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from prometheus_client import CollectorRegistry

DOMAIN = "custom.googleapis.com"
# Family types the exporter pushes, and the names PromQL uses to query each.
QUERY_SUFFIXES = {
    "counter": ("",),
    "gauge": ("",),
    "unknown": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
}


class UnknownMetric(ValueError):
    """An expression names a metric that is not exported (so Cloud Monitoring never has it)."""


def exposed_name(name: str, kind: str) -> str:
    """The series name Prometheus exposes for a family (counters gain ``_total``)."""
    return f"{name}_total" if kind == "counter" else name


def metric_type(name: str) -> str:
    """The custom metric type of an exposed name."""
    return f"{DOMAIN}/{name}"


def promql_name(metric_type_: str) -> str:
    """Cloud Monitoring's PromQL name of a metric type."""
    domain, _, rest = metric_type_.partition("/")
    return re.sub(r"[./]", "_", domain) + ":" + re.sub(r"[./]", "_", rest)


def query_names(registry: CollectorRegistry) -> dict[str, str]:
    """Every name a local PromQL query can use for ``registry`` → its Cloud Monitoring name."""
    names = {}
    for family in registry.collect():
        if family.type not in QUERY_SUFFIXES:
            continue
        base = exposed_name(family.name, family.type)
        for suffix in QUERY_SUFFIXES[family.type]:
            names[base + suffix] = promql_name(metric_type(base)) + suffix
    return names


# --- expression rewriting ----------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+|(?:\d+(?:ms|[smhdwy]))+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
)
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"} | {
    # aggregation operators: `sum by (le) (...)` puts the label list before the parenthesis
    *("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"),
    *("bottomk", "topk", "quantile", "limitk", "limit_ratio"),
}
# Keywords followed by a parenthesised list of label names.
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def _string_end(text: str, start: int) -> int:
    quote, i = text[start], start + 1
    while i < len(text) and text[i] != quote:
        i += 2 if text[i] == "\\" and quote != "`" else 1
    if i >= len(text):
        raise ValueError(f"unterminated string in {text!r}")
    return i + 1


def _group_end(text: str, start: int, close: str) -> int:
    """Index after the bracket closing the one at ``start`` (strings inside skipped)."""
    opening, depth, i = text[start], 0, start
    while i < len(text):
        char = text[i]
        if char in "\"'`":
            i = _string_end(text, i)
            continue
        depth += (char == opening) - (char == close)
        i += 1
        if depth == 0:
            return i
    raise ValueError(f"unbalanced {opening} in {text!r}")


def rewrite(expr: str, names: Mapping[str, str]) -> str:
    """``expr`` with each metric name replaced by ``names[name]``.

    Raises :class:`UnknownMetric` for a metric name missing from ``names``: a rule on a
    metric that is never exported would silently never fire.
    """
    out: list[str] = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            end = _string_end(expr, i)
        elif char == "{":
            end = _group_end(expr, i, "}")  # label matchers
        elif char == "[":
            end = _group_end(expr, i, "]")  # ranges and subqueries: durations only
        elif char == "#":
            end = expr.find("\n", i) % (len(expr) + 1) or len(expr)
        elif (number := _NUMBER.match(expr, i)) and not (char.isalpha() or char in "_:"):
            end = number.end()
        elif ident := _IDENT.match(expr, i):
            end, word = ident.end(), ident.group()
            follows = expr[end:].lstrip()[:1]
            if word.lower() in _LABEL_LISTS and follows == "(":
                end = _group_end(expr, expr.index("(", end), ")")
            elif follows == "(" or word.lower() in _KEYWORDS:
                pass  # a function, an aggregation or an operator
            elif word in names:
                out.append(names[word])
                i = end
                continue
            else:
                raise UnknownMetric(f"metric {word!r} is not exported (not defined in metrics.py)")
        else:
            end = i + 1
        out.append(expr[i:end])
        i = end
    return "".join(out)
