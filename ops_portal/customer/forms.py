from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, TextAreaField, TimeField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from ..domain.catalog import SERVICES
from ..domain.text import MAX_LENGTHS


class NewBookingForm(FlaskForm):
    service = SelectField(
        "What do you need?",
        choices=[SelectChoice("", "Choose a service…")] + [SelectChoice(s, s) for s in SERVICES],
        validators=[DataRequired("Choose a service.")],
    )
    address = StringField(
        "Address",
        validators=[DataRequired("Tell us where the job is."), Length(max=MAX_LENGTHS["address"])],
    )
    day = DateField("Day", validators=[DataRequired("Pick a day.")])
    start = TimeField("From", validators=[DataRequired("Pick a start time.")])
    end = TimeField("Until", validators=[DataRequired("Pick an end time.")])
    notes = TextAreaField("Notes for the provider", validators=[Length(max=MAX_LENGTHS["notes"])])
    # Checked by the service (services.bookings.rules.clean_phone), as the API's is.
    customer_phone = StringField(
        "Phone (optional)", validators=[Length(max=MAX_LENGTHS["customer_phone"])]
    )

    @classmethod
    def again(cls, booking) -> NewBookingForm:
        """The form filled in from an earlier booking, to request the same job at a new time."""
        return cls(
            data={
                "service": booking.service,
                "address": booking.address,
                "notes": booking.notes,
                "customer_phone": booking.customer_phone,
            }
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])

    def validate_day(self, field):
        if field.data and field.data < datetime.now(self.zone).date():
            raise ValidationError("Pick today or a later day.")
        if field.data and field.data > date.today() + timedelta(days=365):
            raise ValidationError("Bookings can be made up to a year ahead.")

    def validate_end(self, field):
        if self.start.data and field.data and field.data <= self.start.data:
            raise ValidationError("The end time must be after the start time.")

    def window(self) -> tuple[datetime, datetime]:
        """The requested window as aware datetimes in the display zone."""
        start = datetime.combine(self.day.data, self.start.data, self.zone)
        end = datetime.combine(self.day.data, self.end.data, self.zone)
        return start, end
