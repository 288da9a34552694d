"""The services each provider does (names from the catalog). A provider with none recorded does
every service: providers created before skills were recorded keep getting work. A booking whose
service is not in the catalog (the first API's "General service") may go to anyone."""

from __future__ import annotations

import sqlalchemy as sa

from ..domain.access import Read, require_read
from ..domain.catalog import SERVICES
from ..domain.errors import InvalidInput, NotPermitted
from ..domain.lifecycle import Actor, Role
from ..extensions import db
from ..models import Provider, ProviderService
from .bookings.rules import check_id
from .transactions import locked_row, write_transaction

# How a list of services is written in a CSV cell, on the command line and in a form's text.
SEPARATOR = ";"


def parse_services(value) -> list[str]:
    """Service names from "Plumbing; Leaking tap" (or a list of names), each from the catalog,
    in catalog order; an unknown name refuses the whole list."""
    if value is None:
        return []
    names = value.split(SEPARATOR) if isinstance(value, str) else value
    if not all(isinstance(name, str) for name in names):
        raise InvalidInput("services must be names of services", field="services")
    wanted = {name.strip() for name in names if name.strip()}
    by_folded = {service.casefold(): service for service in SERVICES}
    unknown = sorted(name for name in wanted if name.casefold() not in by_folded)
    if unknown:
        raise InvalidInput(
            f"Unknown service: {', '.join(unknown)} (the services are: {', '.join(SERVICES)})",
            field="services",
        )
    chosen = {by_folded[name.casefold()] for name in wanted}
    return [service for service in SERVICES if service in chosen]


def set_services(actor: Actor, provider_id: int, services) -> list[str]:
    """Replace the services the provider does (dispatchers only); an empty list means every
    service. Returns them in catalog order."""
    check_id(provider_id, "provider_id")
    if actor.role is not Role.ADMIN:
        raise NotPermitted("Only dispatchers set the services a provider does")
    chosen = parse_services(services)
    with write_transaction() as session:
        locked_row(session, Provider, provider_id, "provider")
        replace_services(session, provider_id, chosen)
    return chosen


def replace_services(session, provider_id: int, chosen: list[str]) -> None:
    """Within the caller's transaction: the provider does exactly `chosen` from now on."""
    session.execute(sa.delete(ProviderService).where(ProviderService.provider_id == provider_id))
    session.add_all(ProviderService(provider_id=provider_id, service=s) for s in chosen)


def services_of(actor: Actor, provider_id: int) -> list[str]:
    """The services the provider does, in catalog order; empty: every service."""
    require_read(actor, Read.PROVIDER_LIST)
    recorded = set(
        db.session.scalars(
            sa.select(ProviderService.service).where(ProviderService.provider_id == provider_id)
        )
    )
    return [service for service in SERVICES if service in recorded]


def does_service(service: str):
    """As SQL, for a query over providers: the provider does `service` (they do it, or they have
    no services recorded, or it is not a catalog service)."""
    if service not in SERVICES:
        return sa.true()
    theirs = sa.select(ProviderService.provider_id).where(
        ProviderService.provider_id == Provider.id
    )
    return sa.or_(
        ~theirs.exists(),
        theirs.where(ProviderService.service == service).exists(),
    )


def provider_does(session, provider_id: int, service: str) -> bool:
    return bool(
        session.scalar(
            sa.select(does_service(service)).select_from(Provider).where(Provider.id == provider_id)
        )
    )
