"""What each audience is shown of an event (domain.access.see_event), event by event: the rule
the pages' timelines and the API's events both follow."""

from datetime import UTC, datetime
from types import SimpleNamespace

from ops_portal.domain.access import Audience, see_event
from ops_portal.domain.lifecycle import Action, Actor, Role, Source, Status

OWNER, PAT, QUINN, ADA = 1, 2, 3, 4
WHEN = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def event(action, to_status, role, actor_id, *, provider_id=None, reason=None, forced=False):
    names = {OWNER: "Olive Owner", PAT: "Pat Provider", QUINN: "Quinn Other", ADA: "Ada Admin"}
    return SimpleNamespace(
        id=9,
        booking_id=7,
        action=action,
        from_status=Status.PENDING,
        to_status=to_status,
        actor_role=role,
        actor_id=actor_id,
        provider_id=provider_id,
        reason=reason,
        forced=forced,
        source=Source.WEB,
        created_at=WHEN,
        actor=SimpleNamespace(name=names[actor_id]) if actor_id else None,
        provider=SimpleNamespace(name=names[provider_id]) if provider_id else None,
    )


CUSTOMER = Actor(Role.CUSTOMER, OWNER)
PROVIDER = Actor(Role.PROVIDER, PAT)
ADMIN = Actor(Role.ADMIN, ADA)
QUINN_REJECTS = event(Action.REJECT, Status.REJECTED, Role.PROVIDER, QUINN, provider_id=QUINN,
                      reason="I only do windows")  # fmt: skip
FORCED = event(Action.FORCE_ASSIGN, Status.ASSIGNED, Role.ADMIN, ADA, provider_id=PAT,
               reason="VIP, owner asked", forced=True)  # fmt: skip


def test_a_customer_reads_plain_words_and_nothing_internal():
    for stored, words in ((QUINN_REJECTS, "Looking for another provider"),
                          (FORCED, "Provider assigned")):  # fmt: skip
        seen = see_event(stored, CUSTOMER)
        assert seen.audience is Audience.CUSTOMER
        assert seen.summary == words
        assert (seen.reason, seen.by, seen.forced, seen.actor_role, seen.action) == (None,) * 5
        assert (seen.provider_id, seen.provider_name, seen.to_status) == (None, None, None)


def test_a_customer_reads_their_own_cancel_reason():
    cancelled = event(Action.CANCEL, Status.CANCELLED, Role.CUSTOMER, OWNER, reason="Moved house")
    assert (see_event(cancelled, CUSTOMER).summary, see_event(cancelled, CUSTOMER).reason) == (
        "Cancelled",
        "Moved house",
    )
    assert see_event(cancelled, PROVIDER).reason is None  # not the provider's to read


def test_a_provider_sees_their_own_job_but_not_others_notes_or_dispatchers_reasons():
    theirs = see_event(FORCED, PROVIDER)
    assert (theirs.by, theirs.provider_id, theirs.to_status) == ("dispatch", PAT, "ASSIGNED")
    assert (theirs.reason, theirs.forced, theirs.actor_role) == (None, None, None)
    other = see_event(QUINN_REJECTS, PROVIDER)
    assert (other.by, other.reason, other.provider_id) == ("another provider", None, None)
    assert other.provider_name is None
    own_note = see_event(
        event(Action.REJECT, Status.REJECTED, Role.PROVIDER, PAT, provider_id=PAT, reason="Ill"),
        PROVIDER,
    )
    assert (own_note.by, own_note.reason) == ("you", "Ill")


def test_dispatchers_see_everything():
    seen = see_event(FORCED, ADMIN)
    assert (seen.action, seen.forced, seen.reason, seen.by) == (
        Action.FORCE_ASSIGN,
        True,
        "VIP, owner asked",
        "Ada Admin",
    )
    assert (seen.actor_role, seen.provider_name, seen.source) == ("ADMIN", "Pat Provider", "web")
    automated = see_event(event(Action.RETRY, Status.PENDING, Role.SYSTEM, None), Actor.system())
    assert automated.by == "automation"
