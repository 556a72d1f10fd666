"""Diagnoses as data: ``krbtrace/rules/<id>.yaml`` compiled to polars filters over the facts frame.

A rule file holds ``id``, ``title``, ``severity`` (critical, high, medium, low, info), ``confidence``, ``match``,
``group_by``, ``explanation`` and ``remedy`` templates, ``references`` and ``examples`` (run by the tests). The
match language is deliberately small; conditions over several rows are columns the correlator computes
(:mod:`krbtrace.correlate_features`):

* ``column: value`` (equality), ``column: [a, b]`` (one of), or ``column: {op: value}`` with ops ``eq``, ``ne``,
  ``in``, ``not_in``, ``gt``, ``gte``, ``lt``, ``lte``, ``abs_gt``, ``abs_lte``, ``is_null``, ``contains``
  (case-insensitive), ``regex``;
* ``all: [...]``, ``any: [...]``, ``not: {...}``; a mapping of several keys means all of them.

A rule with ``fallback: true`` only sees exchanges no other rule matched: every error gets at least the generic
finding with its name and meaning, never silence. Templates use ``{column}`` placeholders filled from the matched
rows (distinct values, or a range for numbers) and ``{count}`` (exchanges), ``{times}`` (once, twice, N times),
``{accounts}`` (distinct principals), ``{first_seen}``, ``{last_seen}``.
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

import polars as pl
import yaml

from parsers.record import KrbRecord

from . import correlate_notes as notes
from .clocks import evidence_expr
from .schema import FINDINGS
from .severity import SEVERITIES, SEVERITY_RANK

log = logging.getLogger(__name__)

RULES_DIR: Final = Path(__file__).with_name("rules")
#: Placeholders that are properties of the finding rather than columns.
FINDING_FIELDS: Final = frozenset({"count", "times", "accounts", "first_seen", "last_seen"})
MAX_NAMES: Final = 5
_OPS: Final = frozenset(
    {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "abs_gt", "abs_lte", "is_null", "contains", "regex"}
)


class RuleError(ValueError):
    """A rule file that does not follow the format (named with the file)."""


@dataclass(frozen=True)
class Rule:
    """One diagnosis rule, as read from its YAML file."""

    id: str
    title: str
    severity: str
    match: dict[str, Any]
    explanation: str
    remedy: str
    confidence: str = "high"
    group_by: tuple[str, ...] = ("client_host", "error_code")
    references: tuple[str, ...] = ()
    examples: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    fallback: bool = False
    principals: str = "client"  # the column a finding lists as its principals

    def placeholders(self) -> set[str]:
        """The ``{names}`` used by the explanation and remedy templates."""
        names = set()
        for text in (self.explanation, self.remedy):
            names.update(f[1] for f in string.Formatter().parse(text) if f[1])
        return names


def _cond(column: str, spec: Any) -> pl.Expr:
    col = pl.col(column)
    if isinstance(spec, list):
        return col.is_in(spec)
    if not isinstance(spec, dict):
        return col.eq(spec)
    parts = []
    for op, value in spec.items():
        if op not in _OPS:
            raise RuleError(f"unknown operator {op!r} on column {column!r}")
        parts.append(
            {
                "eq": lambda v: col.eq(v),
                "ne": lambda v: col.ne_missing(v),
                "in": lambda v: col.is_in(v),
                "not_in": lambda v: ~col.is_in(v).fill_null(False),
                "gt": lambda v: col > v,
                "gte": lambda v: col >= v,
                "lt": lambda v: col < v,
                "lte": lambda v: col <= v,
                "abs_gt": lambda v: col.abs() > v,
                "abs_lte": lambda v: col.abs() <= v,
                "is_null": lambda v: col.is_null() if v else col.is_not_null(),
                "contains": lambda v: col.str.contains(f"(?i){re.escape(str(v))}"),
                "regex": lambda v: col.str.contains(str(v)),
            }[op](value)
        )
    return pl.all_horizontal(parts) if len(parts) > 1 else parts[0]


def compile_match(match: dict[str, Any] | list[Any]) -> pl.Expr:
    """A rule's ``match`` as one boolean polars expression (null counts as false)."""
    if isinstance(match, list):
        return pl.all_horizontal([compile_match(m) for m in match])
    if not isinstance(match, dict) or not match:
        raise RuleError(f"a match must be a non-empty mapping, not {match!r}")
    parts: list[pl.Expr] = []
    for key, spec in match.items():
        if key == "all":
            parts.append(pl.all_horizontal([compile_match(m) for m in spec]))
        elif key == "any":
            parts.append(pl.any_horizontal([compile_match(m).fill_null(False) for m in spec]))
        elif key == "not":
            parts.append(~compile_match(spec).fill_null(False))
        else:
            parts.append(_cond(key, spec))
    expr = pl.all_horizontal(parts) if len(parts) > 1 else parts[0]
    return expr.fill_null(False)


def match_columns(match: Any) -> set[str]:
    """Every column a match refers to."""
    if isinstance(match, list):
        return set().union(*(match_columns(m) for m in match)) if match else set()
    out: set[str] = set()
    for key, spec in match.items():
        if key in ("all", "any"):
            out |= match_columns(spec)
        elif key == "not":
            out |= match_columns(spec)
        else:
            out.add(key)
    return out


def parse_rule(data: dict[str, Any], where: str = "") -> Rule:
    """A :class:`Rule` from a rule file's mapping; :class:`RuleError` names what is wrong."""
    need = ("id", "title", "severity", "match", "explanation", "remedy")
    missing = [k for k in need if k not in data]
    if missing:
        raise RuleError(f"{where}: missing {', '.join(missing)}")
    if data["severity"] not in SEVERITY_RANK:
        raise RuleError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    compile_match(data["match"])
    return Rule(
        id=str(data["id"]),
        title=str(data["title"]),
        severity=str(data["severity"]),
        match=data["match"],
        explanation=" ".join(str(data["explanation"]).split()),
        remedy=" ".join(str(data["remedy"]).split()),
        confidence=str(data.get("confidence", "high")),
        group_by=tuple(data.get("group_by", ("client_host", "error_code"))),
        references=tuple(data.get("references", ())),
        examples=tuple(data.get("examples", ())),
        fallback=bool(data.get("fallback", False)),
        principals=str(data.get("principals", "client")),
    )


@cache
def load_rules(folder: Path = RULES_DIR) -> tuple[Rule, ...]:
    """Every rule under ``folder`` (``*.yaml``), sorted by id; the file name must equal the rule id."""
    rules = []
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        rule = parse_rule(data, str(path))
        if rule.id != path.stem:
            raise RuleError(f"{path}: id {rule.id!r} differs from the file name")
        rules.append(rule)
    return tuple(rules)


def _render(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:+.1f}" if value < 0 else f"{value:.1f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _fill_value(values: list[Any]) -> str:
    vals = [v for v in dict.fromkeys(values) if v is not None and v != ""]
    if not vals:
        # An empty text is a deliberately empty note (a sentence that does not apply); null is unknown.
        return "" if "" in values else "(unknown)"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals) and len(vals) > 1:
        return f"{_render(min(vals))} to {_render(max(vals))}"
    # Sentences (notes) read as a paragraph; names and numbers as a list.
    sep = " " if all(isinstance(v, str) and v.endswith(".") for v in vals) else ", "
    shown = sep.join(_render(v) for v in vals[:MAX_NAMES])
    return shown + (f" and {len(vals) - MAX_NAMES} more" if len(vals) > MAX_NAMES else "")


def _fill(template: str, values: dict[str, list[Any]], extra: dict[str, Any]) -> str:
    out = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        if name in extra:
            out.append(_render(extra[name]))
        elif name in values:
            vals = values[name]
            if name.endswith("offset_s"):  # an offset's sign says which way the clock is off
                vals = [None if v is None else f"{v:+.1f}" for v in vals]
            out.append(_fill_value(vals))
        else:
            out.append("{" + name + "}")
    return "".join(out)


def _clean(values: list[Any]) -> list[Any]:
    return [v for v in values if v is not None and v != ""]


def _findings(rule: Rule, rows: pl.DataFrame) -> list[dict[str, Any]]:
    """One finding per group of matched rows; the per-group values come from one polars group_by."""
    groups = [g for g in rule.group_by if g in rows.columns]
    names = sorted((rule.placeholders() - FINDING_FIELDS) & set(rows.columns))
    rows = rows.with_columns(pl.coalesce("exchange_id", -pl.col("row_id")).alias("_key"), evidence_expr().alias("_ev"))
    if not groups:
        rows = rows.with_columns(pl.lit(1).alias("_all"))
        groups = ["_all"]
    who = rule.principals
    distinct = {n: pl.col(n).unique(maintain_order=True) for n in {*names, who, "client", "service", "error_code"}}
    agg = rows.group_by(groups, maintain_order=True).agg(
        pl.col("_key").n_unique().alias("_count"),
        pl.col("principal").drop_nulls().n_unique().alias("_accounts"),
        pl.col("ts").min().alias("_first"),
        pl.col("ts").max().alias("_last"),
        pl.col("client_host").unique(maintain_order=True).alias("_ch"),
        pl.col("server_host").unique(maintain_order=True).alias("_sh"),
        pl.col("row_id").alias("_rows"),
        pl.col("_ev").alias("_evidence"),
        *[e.alias(f"_v_{n}") for n, e in distinct.items()],
    )
    out = []
    for rec in agg.iter_rows(named=True):
        n = rec["_count"]
        times = {1: "once", 2: "twice"}.get(n, f"{n} times")
        extra = {
            "count": n,
            "times": times,
            "accounts": rec["_accounts"],
            "first_seen": rec["_first"],
            "last_seen": rec["_last"],
        }
        values = {n: rec[f"_v_{n}"] for n in distinct}
        codes = _clean(values["error_code"])
        out.append(
            {
                "rule": rule.id,
                "title": rule.title,
                "severity": rule.severity,
                "confidence": rule.confidence,
                "error_code": codes[0] if codes else None,
                "principals": _clean(values[who]),
                "services": _clean(values["service"]),
                "hosts": list(dict.fromkeys(_clean(rec["_ch"] + rec["_sh"]))),
                **extra,
                "row_ids": rec["_rows"],
                "evidence": rec["_evidence"],
                "explanation": _fill(rule.explanation, values, extra),
                "remedy": _fill(rule.remedy, values, extra),
            }
        )
    return out


def diagnose(facts: pl.DataFrame, rules: tuple[Rule, ...] | None = None) -> pl.DataFrame:
    """Findings (``FINDINGS`` columns) of ``rules`` (default: every packaged rule) over the facts frame.

    Ordered by severity, then count (largest first), then first time seen.
    """
    rules = load_rules() if rules is None else rules
    found: list[dict[str, Any]] = []
    key = pl.coalesce("exchange_id", -pl.col("row_id"))
    for rule in rules:
        missing = (match_columns(rule.match) | {rule.principals}) - set(facts.columns)
        if missing:
            raise RuleError(f"rule {rule.id}: unknown columns {sorted(missing)}")
    # Every rule's mask in one pass (polars evaluates them in parallel), then only the rules that matched filter.
    masks = facts.select([compile_match(r.match).alias(f"m{i}") for i, r in enumerate(rules)])
    hits = masks.sum().row(0) if rules else ()
    claimed = pl.lit(False)
    for i, rule in enumerate(rules):
        if not rule.fallback and hits[i]:
            claimed = claimed | masks[f"m{i}"]
    # A fallback rule speaks for what no other rule explained: not for an exchange another rule took, unless the
    # row carries an error code that rule did not explain (an exchange can hold two different errors).
    code_key = pl.format("{}:{}", key, pl.col("error_code"))
    took = facts.filter(masks.select(claimed.alias("c"))["c"]).select(key.alias("k"), code_key.alias("kc"))
    taken = (pl.col("error_code").is_null() & key.is_in(took["k"].unique().implode())) | code_key.is_in(
        took["kc"].drop_nulls().unique().implode()
    ).fill_null(False)
    for i, rule in sorted(enumerate(rules), key=lambda p: p[1].fallback):
        if not hits[i]:
            continue
        rows = facts.filter(masks[f"m{i}"])
        if rule.fallback:
            rows = rows.filter(~taken)
            if rows.height == 0:
                continue
        found.extend(_findings(rule, notes.add(rows)))
    if not found:
        return FINDINGS.to_frame()
    df = pl.DataFrame(found, schema=FINDINGS)
    rank = pl.col("severity").replace_strict(SEVERITY_RANK, return_dtype=pl.Int32)
    return df.sort([rank, pl.col("count"), pl.col("first_seen")], descending=[False, True, False])


def example_frame(specs: list[dict[str, Any]], base_us: int = 1_700_000_000_000_000) -> pl.DataFrame:
    """A ``TIMELINE`` frame from a rule example's rows (also used by the tests to write timelines briefly).

    Each mapping holds ``KrbRecord`` fields; ``t`` is seconds after ``base_us`` (2023-11-14T22:13:20Z), and the
    time fields ``till``/``rtime``/``stime``/``ctime`` are seconds after it too. ``repeat: n`` with ``every: s``
    makes n rows, ``{i}`` in a text value becoming 0..n-1. Defaults: ``source`` example.pcap (example.evtx for
    events), ``record_no`` the row's position, ``carrier`` kdc and ``transport`` tcp for messages, ``phase`` and
    ``error_name`` from the message type and code.
    """
    from parsers.krb5.constants import MSG_PHASE, error_name

    from .timeline import frame

    records = []
    for spec in specs:
        spec = dict(spec)
        n = int(spec.pop("repeat", 1))
        every = float(spec.pop("every", 1.0))
        t0 = float(spec.pop("t", 0.0))
        for i in range(n):
            row = {k: (v.replace("{i}", str(i)) if isinstance(v, str) else v) for k, v in spec.items()}
            row["ts"] = base_us + round((t0 + i * every) * 1e6)
            for tf in ("till", "rtime", "stime", "ctime"):
                if row.get(tf) is not None:
                    row[tf] = base_us + round(float(row[tf]) * 1e6)
            event = row.get("event_id") is not None
            row.setdefault("source", "example.evtx" if event else "example.pcap")
            row.setdefault("source_kind", "evtx" if event else "pcap")
            row.setdefault("record_no", len(records) + 1)
            if row.get("msg_type") is not None:
                row.setdefault("carrier", "kdc")
                row.setdefault("phase", MSG_PHASE.get(row["msg_type"]))
            if row.get("carrier") is not None:
                row.setdefault("transport", "tcp")
            if row.get("error_code") is not None:
                row.setdefault("error_name", error_name(row["error_code"]))
            for k, v in row.items():
                if isinstance(v, list):
                    row[k] = tuple(v)
            records.append(KrbRecord(**row))
    return frame(records)


def check_example(rule: Rule, example: dict[str, Any]) -> list[str]:
    """Run one of ``rule``'s examples through the whole analysis; the list of what differs from ``expect``."""
    from .analysis import analyze_frame

    a = analyze_frame(example_frame(example["rows"]))
    got = a.findings.filter(pl.col("rule") == rule.id)
    expect = example.get("expect")
    name = example.get("name", "?")
    if expect is None:
        return [f"{name}: expected no finding, got {got.height}: {got['explanation'].to_list()}"] if got.height else []
    if got.height != int(expect.get("findings", 1)):
        others = a.findings.select("rule", "explanation").rows()
        return [f"{name}: expected {expect.get('findings', 1)} finding(s), got {got.height}; all findings: {others}"]
    f = got.row(0, named=True)
    problems = []
    for key in ("count", "error_code", "severity"):
        if key in expect and f[key] != expect[key]:
            problems.append(f"{name}: {key} {f[key]!r} != {expect[key]!r}")
    for key in ("principals", "services", "hosts"):
        if key in expect and sorted(f[key]) != sorted(expect[key]):
            problems.append(f"{name}: {key} {f[key]!r} != {expect[key]!r}")
    for key in ("explanation", "remedy"):
        for word in expect.get(f"{key}_contains", []):
            if str(word) not in f[key]:
                problems.append(f"{name}: {key} lacks {word!r}: {f[key]}")
        if "(unknown)" in f[key] and not expect.get("unknown_ok"):
            problems.append(f"{name}: {key} has an unfilled placeholder: {f[key]}")
    return problems
