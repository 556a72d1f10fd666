"""Every rule file loads, every placeholder is a real column, and every rule's YAML examples run."""

from __future__ import annotations

import string

import pytest

from krbtrace.analysis import analyze_frame
from krbtrace.correlate_notes import NOTE_COLUMNS
from krbtrace.diagnose import (
    FINDING_FIELDS,
    RuleError,
    check_example,
    compile_match,
    example_frame,
    load_rules,
    parse_rule,
)
from krbtrace.schema import CORRELATED

RULES = load_rules()
EXAMPLES = [(r, i) for r in RULES for i in range(len(r.examples))]


def _facts_columns() -> set[str]:
    facts = analyze_frame(example_frame([{"msg_type": "AS-REQ", "client": "x"}])).facts
    return set(facts.columns) | set(NOTE_COLUMNS)


def test_rules_exist_and_have_examples():
    assert len(RULES) >= 2
    for rule in RULES:
        assert rule.examples, f"{rule.id} has no examples"
        assert any(ex.get("expect") is not None for ex in rule.examples), f"{rule.id} never fires in its examples"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_placeholders_are_columns(rule):
    cols = _facts_columns()
    unknown = rule.placeholders() - cols - FINDING_FIELDS
    assert not unknown, f"{rule.id}: placeholders without a column: {unknown}"


@pytest.mark.parametrize(("rule", "index"), EXAMPLES, ids=lambda v: v.id if hasattr(v, "id") else str(v))
def test_rule_example(rule, index):
    assert check_example(rule, rule.examples[index]) == []


def test_match_language():
    import polars as pl

    df = pl.DataFrame({"a": [1, 2, 3, None], "s": ["Foo", "bar", None, "baz"]})
    assert df.filter(compile_match({"a": 2})).height == 1
    assert df.filter(compile_match({"a": [1, 3]})).height == 2
    assert df.filter(compile_match({"a": {"gte": 2, "lt": 3}})).height == 1
    assert df.filter(compile_match({"a": {"is_null": True}})).height == 1
    assert df.filter(compile_match({"s": {"contains": "FOO"}})).height == 1
    assert df.filter(compile_match({"any": [{"a": 1}, {"s": "baz"}]})).height == 2
    assert df.filter(compile_match({"not": {"a": 1}})).height == 3
    assert df.filter(compile_match({"a": {"not_in": [1]}})).height == 3
    assert df.filter(compile_match({"a": {"abs_gt": 2}})).height == 1


def test_bad_rules_are_named():
    with pytest.raises(RuleError, match="missing"):
        parse_rule({"id": "x"}, "x.yaml")
    with pytest.raises(RuleError, match="severity"):
        parse_rule({"id": "x", "title": "t", "severity": "bad", "match": {"a": 1}, "explanation": "", "remedy": ""})
    with pytest.raises(RuleError, match="operator"):
        compile_match({"a": {"bogus": 1}})


def test_placeholder_parser_sees_every_name():
    rule = RULES[0]
    text = rule.explanation + rule.remedy
    names = {f[1] for f in string.Formatter().parse(text) if f[1]}
    assert names == rule.placeholders()


def test_readme_documents_every_feature_column():
    from pathlib import Path

    import krbtrace.correlate_features as features

    readme = (Path(features.__file__).parent / "rules" / "README.md").read_text(encoding="utf-8")
    facts = analyze_frame(example_frame([{"msg_type": "AS-REQ", "client": "x"}])).facts
    added = [c for c in facts.columns if c not in set(CORRELATED.names()) and not c.startswith(("raw_", "x_"))]
    added = [c for c in added if c not in ("xid", "client_ip", "client_port", "server_ip", "server_port")]
    missing = [c for c in added if f"`{c}`" not in readme]
    assert not missing, f"undocumented facts columns: {missing}"


def test_change_kinds_never_contain_one_another():
    # Rules match one kind of a comma-separated `change` list with `contains`: no kind may hide inside another.
    from krbtrace.correlate_changes import KINDS, LDAP_BITS, SAM_BITS, UAC_MESSAGES, UNDONE_BY, VALUE_ATTRIBUTES

    assert len(set(KINDS)) == len(KINDS)
    for a in KINDS:
        for b in KINDS:
            assert a == b or a not in b, f"{a} is part of {b}"
    named = set(UAC_MESSAGES.values()) | {k for pair in (*SAM_BITS.values(), *LDAP_BITS.values()) for k in pair}
    named |= {k for pair in VALUE_ATTRIBUTES.values() for k in pair} | set(UNDONE_BY) | set(UNDONE_BY.values())
    assert named <= set(KINDS)
    # The two layouts name the same four settings (MS-SAMR 2.2.1.12 vs ADS_USER_FLAG_ENUM).
    assert sorted(SAM_BITS.values()) == sorted(LDAP_BITS.values())
