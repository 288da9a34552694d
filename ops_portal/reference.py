"""The parts of docs/ that are tables in the code: rendered from LIFECYCLE and READ_RULES into
marked regions of the Markdown files, so the documents cannot drift from the rules.

`flask --app ops_portal docs write` rewrites the regions; `docs check` (and the test suite)
fails while a document is stale. Everything outside the markers is prose, edited by hand."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from .domain.access import EVENT_FIELDS, READ_RULES, Audience, Scope
from .domain.lifecycle import (
    ACTIVE,
    BOOKING_ACTIONS,
    LIFECYCLE,
    STATUS_WORDS,
    TERMINAL,
    Action,
    Deadline,
    Relation,
    Role,
    Status,
)

ROLES = (Role.CUSTOMER, Role.PROVIDER, Role.ADMIN, Role.SYSTEM)
RELATION_WORDS = {
    Relation.ANY: "",
    Relation.OWNER: " who owns it",
    Relation.ASSIGNED: " assigned to it",
}
SCOPE_WORDS = {
    Scope.ALL: "all",
    Scope.OWN: "own",
    Scope.ASSIGNED: "assigned to them now",
    Scope.FINISHED: "completed by them",
}


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header, rows) -> str:
    return "\n".join([_row(header), _row("---" for _ in header), *(_row(r) for r in rows)])


def _statuses(statuses) -> str:
    return ", ".join(f"`{status}`" for status in Status if status in statuses) or "—"


def _who(action: Action) -> str:
    rule = LIFECYCLE[action]
    roles = " or ".join(role.lower() for role in ROLES if role in rule.roles)
    return roles + RELATION_WORDS[rule.relation]


def _also(action: Action) -> str:
    rule = LIFECYCLE[action]
    notes = []
    if rule.takes_provider and rule.checks_availability:
        notes.append(
            "names a provider, who must exist, be active and AVAILABLE "
            '(else 403 "Provider is busy")'
        )
    elif rule.takes_provider:
        notes.append("names a provider, who must exist and be active but may be busy")
    if rule.forced:
        notes.append("the event is marked forced")
    if rule.releases_provider:
        notes.append("releases the provider")
    if rule.reason_required:
        notes.append("a reason is required")
    elif rule.asks_reason:
        notes.append("pages ask for a reason")
    elif rule.reason_presets:
        notes.append("pages offer reasons to choose from (optional)")
    if rule.offer_deadline is Deadline.BEFORE:
        notes.append('only before the offer\'s deadline (after it 409 "This offer expired at …")')
    elif rule.offer_deadline is Deadline.AFTER:
        notes.append("only once the offer's deadline has passed (before it 409)")
    if rule.confirms:
        notes.append("pages ask to confirm")
    if rule.refusal_hint:
        notes.append(rule.refusal_hint)
    return "; ".join(notes) or "—"


def lifecycle_table() -> str:
    create = LIFECYCLE[Action.CREATE]
    rows = [["`create`", "—", f"`{create.target}`", _who(Action.CREATE) + " (for themselves)", "—"]]
    rows += [
        [f"`{action}`", _statuses(LIFECYCLE[action].sources), f"`{LIFECYCLE[action].target}`",
         _who(action), _also(action)]
        for action in BOOKING_ACTIONS
    ]  # fmt: skip
    return _table(["action", "from", "to", "who may", "also"], rows)


def status_table() -> str:
    def kind(status: Status) -> str:
        if status in TERMINAL:
            return "terminal: final for everyone"
        if status in ACTIVE:
            return "active: the provider is BUSY"
        if status in LIFECYCLE[Action.RETRY].sources:
            return "recoverable by a retry"
        return "open"

    rows = [[f"`{status}`", STATUS_WORDS[status], kind(status)] for status in Status]
    return _table(["status", "pages say", "kind"], rows)


def access_table() -> str:
    rows = [
        [rule.read.value, *(SCOPE_WORDS.get(rule.scopes.get(role), "no") for role in ROLES)]
        for rule in READ_RULES.values()
    ]
    return _table(["what", *(role.lower() for role in ROLES)], rows)


def actions_by_role_table() -> str:
    rows = [
        [role.lower(), ", ".join(f"`{a}`" for a in LIFECYCLE if role in LIFECYCLE[a].roles) or "—"]
        for role in ROLES
    ]
    return _table(["role", "may take (where the table allows it)"], rows)


# An event's fields, in the order the timeline document lists them, and what is withheld on
# events where the field is someone else's (domain.access.see_event).
EVENT_FIELD_ORDER = (
    "id", "booking_id", "created_at", "summary", "reason", "to_status", "by", "provider_id",
    "action", "from_status", "actor_role", "actor_id", "forced", "source",
)  # fmt: skip
WITHHELD = {"reason": "own only", "provider_id": "own only", "by": "in words"}


def event_fields_table() -> str:
    def shown(field: str, audience: Audience) -> str:
        if field not in EVENT_FIELDS[audience]:
            return "no"
        if audience is Audience.DISPATCH:
            return "yes"
        return WITHHELD.get(field, "yes")

    rows = [
        [f"`{field}`", *(shown(field, audience) for audience in Audience)]
        for field in EVENT_FIELD_ORDER
    ]
    return _table(["event field", *(audience.value for audience in Audience)], rows)


def customer_words_table() -> str:
    rows = [[f"`{action}`", LIFECYCLE[action].customer_words] for action in LIFECYCLE]
    return _table(["action", "a customer reads"], rows)


# document -> region name -> what renders it
GENERATED: dict[str, dict[str, Callable[[], str]]] = {
    "docs/lifecycle.md": {"statuses": status_table, "lifecycle": lifecycle_table},
    "docs/access.md": {
        "reads": access_table,
        "actions": actions_by_role_table,
        "event-fields": event_fields_table,
        "customer-words": customer_words_table,
    },
}
_REGION = re.compile(
    r"(<!-- generated: (?P<name>[a-z-]+) \(flask --app ops_portal docs write\) -->\n)"
    r".*?"
    r"(<!-- end of generated: (?P=name) -->)",
    re.DOTALL,
)


def rendered(text: str, regions: dict[str, Callable[[], str]]) -> str:
    """The document with each marked region's contents rendered afresh."""
    found = {match.group("name") for match in _REGION.finditer(text)}
    missing = set(regions) - found
    if missing:
        raise ValueError(f"no marked region for {', '.join(sorted(missing))}")
    return _REGION.sub(lambda m: f"{m.group(1)}{regions[m.group('name')]()}\n{m.group(3)}", text)


def stale_documents(root: Path) -> list[str]:
    return [
        path
        for path, regions in GENERATED.items()
        if rendered((root / path).read_text(), regions) != (root / path).read_text()
    ]


def write_documents(root: Path) -> list[str]:
    """Rewrite every stale document's generated regions; returns the documents rewritten."""
    stale = stale_documents(root)
    for path in stale:
        document = root / path
        document.write_text(rendered(document.read_text(), GENERATED[path]))
    return stale
