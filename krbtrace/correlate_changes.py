"""Kerberos-relevant account changes (Security 4738, 4742, 5136) as columns the rules match on.

The parser keeps these events as context rows with their whole EventData as JSON (``event_data``); this module
reads that JSON and says what changed, by whom, on which account. Sources of the constants:

* 4738/4742 ``UserAccountControl`` lists message ids of the changed flags (event-4720.md / event-4738.md,
  windows-itpro-docs; ``windows-events.md`` §1, §4: values may carry ``\\n\\t\\t`` and several ids per field).
* 4738/4742 ``OldUacValue``/``NewUacValue`` use the SAM layout, MS-SAMR 2.2.1.12 (USER_ACCOUNT codes).
* 5136 ``userAccountControl`` values use the LDAP layout, MS-ADTS 2.2.16 / ADS_USER_FLAG_ENUM (event-4720.md's
  table); ``OperationType`` ``%%14674`` = value added, ``%%14675`` = value deleted (event-5136.md). Replacing a
  single-valued attribute logs a delete of the old value and an add of the new one with the same
  ``OpCorrelationID``: the pair says which bits were newly set.

One row may carry several changes (a 4742 can enable protocol transition and set the delegation targets at once):
``change`` is a comma-separated list of kinds, none of which is a substring of another, so a rule matches one with
``change: {contains: preauth_disabled}``.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from datetime import datetime
from typing import Any, Final

import orjson
import polars as pl

from .exchanges import principal_key

CHANGE_EVENTS: Final = (4738, 4742, 5136)

#: 4738/4742 ``UserAccountControl`` message ids (event-4720.md): %%209x "... - Enabled", %%206x "... - Disabled".
UAC_MESSAGES: Final[dict[str, str]] = {
    "%%2096": "preauth_disabled",  # 'Don't Require Preauth' - Enabled
    "%%2064": "preauth_enabled",  # 'Don't Require Preauth' - Disabled
    "%%2095": "des_only_enabled",  # 'Use DES Key Only' - Enabled
    "%%2063": "des_only_disabled",  # 'Use DES Key Only' - Disabled
    "%%2093": "unconstrained_delegation_enabled",  # 'Trusted For Delegation' - Enabled
    "%%2061": "unconstrained_delegation_disabled",  # 'Trusted For Delegation' - Disabled
    "%%2098": "protocol_transition_enabled",  # 'Trusted To Authenticate For Delegation' - Enabled
    "%%2066": "protocol_transition_disabled",  # 'Trusted To Authenticate For Delegation' - Disabled
}
#: SAM USER_* bits (MS-SAMR 2.2.1.12), the layout of 4738/4742 OldUacValue/NewUacValue: kind when set, when cleared.
SAM_BITS: Final[dict[int, tuple[str, str]]] = {
    0x00002000: ("unconstrained_delegation_enabled", "unconstrained_delegation_disabled"),  # TRUSTED_FOR_DELEGATION
    0x00008000: ("des_only_enabled", "des_only_disabled"),  # USER_USE_DES_KEY_ONLY
    0x00010000: ("preauth_disabled", "preauth_enabled"),  # USER_DONT_REQUIRE_PREAUTH
    0x00040000: ("protocol_transition_enabled", "protocol_transition_disabled"),  # TRUSTED_TO_AUTHENTICATE_FOR_...
}
#: LDAP userAccountControl bits (ADS_USER_FLAG_ENUM, event-4720.md), the layout of 5136 values.
LDAP_BITS: Final[dict[int, tuple[str, str]]] = {
    0x00080000: SAM_BITS[0x2000],  # ADS_UF_TRUSTED_FOR_DELEGATION
    0x00200000: SAM_BITS[0x8000],  # ADS_UF_USE_DES_KEY_ONLY
    0x00400000: SAM_BITS[0x10000],  # ADS_UF_DONT_REQUIRE_PREAUTH
    0x01000000: SAM_BITS[0x40000],  # ADS_UF_TRUSTED_TO_AUTHENTICATE_FOR_DELEGATION
}
#: 5136 ``OperationType`` (event-5136.md).
VALUE_ADDED: Final = "%%14674"
VALUE_DELETED: Final = "%%14675"
#: 5136 attributes holding a value: kind when a value is added, when one is deleted.
VALUE_ATTRIBUTES: Final[dict[str, tuple[str, str]]] = {
    "serviceprincipalname": ("spn_added", "spn_removed"),
    "msds-allowedtodelegateto": ("constrained_delegation_set", "constrained_delegation_removed"),
    "msds-allowedtoactonbehalfofotheridentity": ("rbcd_set", "rbcd_removed"),
}
#: Every kind, in the order a row lists them (the most dangerous first).
KINDS: Final = (
    "preauth_disabled",
    "unconstrained_delegation_enabled",
    "protocol_transition_enabled",
    "constrained_delegation_set",
    "rbcd_set",
    "des_only_enabled",
    "spn_added",
    "spn_list_set",
    "preauth_enabled",
    "unconstrained_delegation_disabled",
    "protocol_transition_disabled",
    "constrained_delegation_removed",
    "rbcd_removed",
    "des_only_disabled",
    "spn_removed",
)
#: A change and the one that undoes it (reported inside the first change's finding, never on its own).
UNDONE_BY: Final[dict[str, str]] = {
    "preauth_disabled": "preauth_enabled",
    "des_only_enabled": "des_only_disabled",
    "unconstrained_delegation_enabled": "unconstrained_delegation_disabled",
    "protocol_transition_enabled": "protocol_transition_disabled",
    "constrained_delegation_set": "constrained_delegation_removed",
    "rbcd_set": "rbcd_removed",
    "spn_added": "spn_removed",
}
#: Windows renders a security descriptor it cannot parse (or hides) with this text instead of SDDL.
UNREADABLE_SD: Final = frozenset({"malformed security descriptor"})
COLUMNS: Final = {
    "change": pl.String,
    "change_target": pl.String,
    "change_target_class": pl.String,
    "change_actor": pl.String,
    "change_value": pl.String,
    "change_note": pl.String,
}
_FIRST_RDN: Final = re.compile(r"^\s*[A-Za-z]+=((?:\\.|[^,\\])+)")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    value = str(value).strip()
    return None if value in ("", "-") else value


def _items(value: Any) -> list[str]:
    """A list field's values: the parser's list, or text with several values separated by white space."""
    if value is None:
        return []
    parts = value if isinstance(value, list) else [value]
    return [p for part in parts for p in str(part).split() if p not in ("-",)]


def _number(value: Any) -> int | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _bit_kinds(old: int, new: int, table: dict[int, tuple[str, str]]) -> list[str]:
    out = []
    for bit, (on, off) in table.items():
        if new & bit and not old & bit:
            out.append(on)
        elif old & bit and not new & bit:
            out.append(off)
    return out


def _cn(dn: str | None, object_class: str | None) -> str | None:
    """The account name a DN stands for: its first RDN value, with ``$`` for a computer (its usual sAMAccountName)."""
    m = _FIRST_RDN.match(dn or "")
    if not m:
        return dn
    name = re.sub(r"\\(.)", r"\1", m.group(1)).strip()
    return name + "$" if (object_class or "").lower() == "computer" and not name.endswith("$") else name


def _account_change(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """4738/4742: the kinds of the flag and delegation changes of one event, and the delegation targets."""
    kinds = [UAC_MESSAGES[m] for m in _items(data.get("UserAccountControl")) if m in UAC_MESSAGES]
    old, new = _number(data.get("OldUacValue")), _number(data.get("NewUacValue"))
    if old is not None and new is not None:  # producers that render the flags as text still give the numbers
        kinds += _bit_kinds(old, new, SAM_BITS)
    targets = _items(data.get("AllowedToDelegateTo"))
    if targets and "<value" in " ".join(targets).lower():  # "<value not set>" (event-4738.md): list emptied
        return [*kinds, "constrained_delegation_removed"], []
    return ([*kinds, "constrained_delegation_set"], targets) if targets else (kinds, [])


def _spn_list(spns: list[str], before: set[str] | None) -> tuple[list[str], list[str]]:
    """4742 ``ServicePrincipalNames`` is the whole list after the change: what was added, if an earlier list of the
    account is in the inputs (``spn_added``, ``spn_removed``), else the list itself (``spn_list_set``)."""
    if before is None:
        return ["spn_list_set"], spns
    added = [v for v in spns if v.lower() not in before]
    removed = before - {v.lower() for v in spns}
    return (["spn_added"] if added else []) + (["spn_removed"] if removed else []), added


def _directory_change(
    client: str | None, d: dict[str, Any], old_uac: dict[tuple[str, str], int]
) -> tuple[list[str], list[str]]:
    """5136: the kinds and the value of one attribute change."""
    attr = (_text(d.get("AttributeLDAPDisplayName")) or "").lower()
    op = _text(d.get("OperationType"))
    value = _text(d.get("AttributeValue"))
    if attr in VALUE_ATTRIBUTES and op in (VALUE_ADDED, VALUE_DELETED):
        shown = [value] if value and value.lower() not in UNREADABLE_SD else []
        return [VALUE_ATTRIBUTES[attr][0 if op == VALUE_ADDED else 1]], shown
    if attr == "useraccountcontrol" and op == VALUE_ADDED:
        old = old_uac.get((_text(d.get("OpCorrelationID")) or "", (client or "").lower()))
        new = _number(value)
        # Without the deleted old value the bits that were already set cannot be told from new ones.
        if old is not None and new is not None:
            return _bit_kinds(old, new, LDAP_BITS), []
    return [], []


def _parse(events: pl.DataFrame) -> list[tuple[int, int, str | None, dict[str, Any]]]:
    parsed = []
    for rid, eid, client, data_text in events.select("row_id", "event_id", "client", "event_data").iter_rows():
        try:
            data = orjson.loads(data_text) if data_text else {}
        except orjson.JSONDecodeError:
            data = {}
        parsed.append((rid, eid, client, data if isinstance(data, dict) else {}))
    return parsed


def _rows(events: pl.DataFrame) -> list[dict[str, Any]]:
    parsed = _parse(events)  # in time order
    # 5136 userAccountControl: the deleted (old) value of each operation, by OpCorrelationID and object.
    old_uac: dict[tuple[str, str], int] = {}
    for _rid, eid, client, d in parsed:
        attr = (_text(d.get("AttributeLDAPDisplayName")) or "").lower()
        if eid == 5136 and attr == "useraccountcontrol" and _text(d.get("OperationType")) == VALUE_DELETED:
            value = _number(d.get("AttributeValue"))
            if value is not None:
                old_uac[(_text(d.get("OpCorrelationID")) or "", (client or "").lower())] = value
    out = []
    listed: dict[str, set[str]] = {}  # delegation targets a 4738/4742 lists, by account
    spn_lists: dict[str, set[str]] = {}  # the last 4742 SPN list, by account
    for rid, eid, client, d in parsed:
        if eid == 5136:
            object_class = (_text(d.get("ObjectClass")) or "").lower() or None
            target = _cn(client, object_class)
            kinds, values = _directory_change(client, d, old_uac)
        else:
            object_class = "user" if eid == 4738 else "computer"
            target = client
            kinds, values = _account_change(d)
            listed.setdefault((target or "").lower(), set()).update(v.lower() for v in values)
            spns = _items(d.get("ServicePrincipalNames")) if eid == 4742 else []
            if spns and "<value" not in " ".join(spns).lower():
                more, shown = _spn_list(spns, spn_lists.get((target or "").lower()))
                kinds, values = kinds + more, values + shown
                spn_lists[(target or "").lower()] = {v.lower() for v in spns}
        kinds = [k for k in KINDS if k in kinds]
        if not kinds:
            continue
        actor = _text(d.get("SubjectUserName"))
        domain = _text(d.get("SubjectDomainName"))
        out.append(
            {
                "row_id": rid,
                "event_id": eid,
                "change": ",".join(kinds),
                "change_target": target,
                "change_target_class": object_class,
                "change_actor": f"{domain}\\{actor}" if actor and domain else actor,
                "change_value": ", ".join(dict.fromkeys(values)) or None,
            }
        )
    # The 5136 rows of a delegation change repeat, one target each, what its 4738/4742 lists: the list speaks.
    for rec in out:
        value = rec.pop("event_id") == 5136 and "constrained_delegation" in rec["change"] and rec["change_value"]
        if value and value.lower() in listed.get((rec["change_target"] or "").lower(), ()):
            rec["change_value"] = None
    return out


def _fmt_time(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def _kinds(change: str | None) -> set[str]:
    return set((change or "").split(","))


#: Rows of one account or SPN in time order: (ts, client_host, ticket_etype).
_Uses = dict[str, list[tuple[datetime, str | None, int | None]]]


def _by_key(df: pl.DataFrame, key: str) -> _Uses:
    """``df``'s rows grouped by ``key``, each group in time order (input order among equal times)."""
    out: _Uses = {}
    etypes = df["ticket_etype"] if "ticket_etype" in df.columns else pl.Series([None] * df.height)
    for k, ts, host, etype in zip(df[key], df["ts"], df["client_host"], etypes, strict=True):
        if ts is not None:  # a row without a time is never "after" a change
            out.setdefault(k, []).append((ts, host, etype))
    for rows in out.values():
        rows.sort(key=lambda r: r[0])
    return out


def _later(uses: _Uses, keys: set[str], ts: datetime) -> list[tuple[datetime, str | None, int | None]]:
    """The rows of ``keys`` at or after ``ts``, in time order."""
    out = []
    for k in keys:
        rows = uses.get(k, [])
        out += rows[bisect_left(rows, ts, key=lambda r: r[0]) :]
    out.sort(key=lambda r: r[0])
    return out


def _used_note(rec: dict[str, Any], no_preauth: _Uses, tickets: _Uses) -> str:
    """Whether the inputs show the change being used afterwards (a sentence, or empty text)."""
    key = (rec["change_target"] or "").lower()
    kinds = _kinds(rec["change"])
    if rec["ts"] is None:
        return ""
    if "preauth_disabled" in kinds and no_preauth:
        later = _later(no_preauth, {key}, rec["ts"])
        if later:
            return (
                f"It was used: the KDC then issued {len(later)} TGT(s) for {rec['change_target']} without "
                f"pre-authentication, the first at {_fmt_time(later[0][0])} to {later[0][1] or '?'}."
            )
    if "spn_added" in kinds and tickets:
        spns = {v.strip().lower() for v in (rec["change_value"] or "").split(",")}
        later = _later(tickets, {key, key.rstrip("$"), *spns}, rec["ts"])
        if later:
            etypes = sorted({e for _, _, e in later if e is not None})
            return (
                f"Service tickets for it were then issued {len(later)} time(s), the first at "
                f"{_fmt_time(later[0][0])} to {later[0][1] or '?'}"
                + (f" (ticket etype {', '.join(map(str, etypes))})." if etypes else ".")
            )
    return ""


def _undone_note(rec: dict[str, Any], later: list[dict[str, Any]]) -> str:
    """When a later change on the same account (``later``: that account's changes in time order) undid this one."""
    kinds = _kinds(rec["change"])
    undo = {UNDONE_BY[k] for k in kinds if k in UNDONE_BY}
    for other in later if undo else ():
        if other["ts"] <= rec["ts"] or not undo & _kinds(other["change"]):
            continue
        when = f"at {_fmt_time(other['ts'])} by {other['change_actor'] or '?'}."
        if "spn_added" not in kinds:
            return f"It was undone {when}"
        if other["change_value"] == rec["change_value"]:  # an SPN is undone only by removing that SPN
            return f"The SPN {rec['change_value']} was removed {when}"
    return ""


def _notes(changes: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """``change_note``: whether the inputs show the change used or undone afterwards (sentences, or empty text)."""
    changes = changes.join(facts.select("row_id", "ts"), on="row_id", how="left").sort("ts")
    recs = list(changes.iter_rows(named=True))
    # Only the accounts and SPNs of the changes matter: the per-change look-ups then scan small frames.
    preauth_keys = [(r["change_target"] or "").lower() for r in recs if "preauth_disabled" in _kinds(r["change"])]
    spn_keys = set()
    for r in recs:
        if "spn_added" in _kinds(r["change"]):
            key = (r["change_target"] or "").lower()
            spn_keys |= {key, key.rstrip("$"), *(v.strip().lower() for v in (r["change_value"] or "").split(","))}
    # A TGT issued without pre-authentication (asrep_roastable's evidence): the pre-auth change was used.
    no_preauth = facts.filter(
        pl.col("principal").is_in(preauth_keys)
        & (
            ((pl.col("event_id") == 4768) & (pl.col("preauth_type") == 0) & pl.col("error_code").is_null())
            | ((pl.col("msg_type") == "AS-REP") & (pl.col("x_preauth") == False) & (pl.col("outcome") == "ok"))  # noqa: E712
        )
    ).select("ts", "principal", "client_host")
    # A service ticket for the account (4769 names the account, a capture the SPN): the SPN was used.
    tickets = (
        facts.filter(
            (pl.col("phase") == "TGS")
            & (pl.col("outcome") == "ok")
            & ((pl.col("event_id") == 4769) | (pl.col("msg_type") == "TGS-REP"))
        )
        .select("ts", principal_key("service").alias("service_key"), "ticket_etype", "client_host")
        .filter(pl.col("service_key").is_in(list(spn_keys)))
    )
    by_target: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        by_target.setdefault((r["change_target"] or "").lower(), []).append(r)
    notes = []
    preauth_uses, ticket_uses = _by_key(no_preauth, "principal"), _by_key(tickets, "service_key")
    for rec in recs:
        parts = [
            _used_note(rec, preauth_uses, ticket_uses),
            _undone_note(rec, by_target[(rec["change_target"] or "").lower()]),
        ]
        notes.append(" ".join(p for p in parts if p))
    return changes.drop("ts").with_columns(pl.Series("change_note", notes, dtype=pl.String))


def add(facts: pl.DataFrame) -> pl.DataFrame:
    """``facts`` with the change columns (``COLUMNS``); null outside the account-change rows that changed Kerberos
    settings (``change_note`` is empty text there, so a template can name it unconditionally)."""
    events = facts.filter(pl.col("event_id").is_in(CHANGE_EVENTS) & pl.col("event_data").is_not_null())
    rows = _rows(events) if events.height else []
    if not rows:
        return facts.with_columns(
            *[pl.lit(None, dtype).alias(c) for c, dtype in COLUMNS.items() if c != "change_note"],
            pl.lit("").alias("change_note"),
        )
    changes = pl.DataFrame(rows, schema={"row_id": pl.Int64, **{c: COLUMNS[c] for c in COLUMNS if c != "change_note"}})
    changes = _notes(changes, facts)
    changes = changes.cast({"row_id": facts.schema["row_id"]})
    joined = facts.join(changes, on="row_id", how="left", maintain_order="left")
    return joined.with_columns(pl.col("change_note").fill_null(""))
