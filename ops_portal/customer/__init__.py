"""Customer pages: my bookings, the new-booking form, cancel."""
