"""Bookings and events as JSON (SPEC §7): ISO 8601 times with their offset."""

from __future__ import annotations

from datetime import datetime

from ..models import Booking, BookingEvent


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_json(event: BookingEvent) -> dict:
    return {
        "id": event.id,
        "booking_id": event.booking_id,
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor_role": event.actor_role,
        "actor_id": event.actor_id,
        "provider_id": event.provider_id,
        "reason": event.reason,
        "forced": event.forced,
        "source": event.source,
        "created_at": iso(event.created_at),
    }


def booking_json(booking: Booking, *, with_events: bool = False) -> dict:
    data = {
        "id": booking.id,
        "status": booking.status,
        "customer_id": booking.customer_id,
        "customer_name": booking.customer_name,
        "provider_id": booking.provider_id,
        "provider_name": booking.provider.name if booking.provider else None,
        "assignment_forced": booking.assignment_forced,
        "service": booking.service,
        "address": booking.address,
        "window_start": iso(booking.window_start),
        "window_end": iso(booking.window_end),
        "notes": booking.notes,
        "version": booking.version,
        "created_at": iso(booking.created_at),
        "updated_at": iso(booking.updated_at),
    }
    if with_events:
        data["events"] = [event_json(e) for e in booking.events]
    return data
