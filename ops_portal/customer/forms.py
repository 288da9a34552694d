from __future__ import annotations

from datetime import datetime, time, timedelta

from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from ..domain.catalog import SERVICES
from ..domain.schedule import ARRIVAL_SLOTS, TIMES_OF_DAY
from ..domain.text import MAX_LENGTHS
from ..web.clock import display_zone

ANOTHER_TIME = "other"


def _hhmm(value: time) -> str:
    return f"{value:%H:%M}"


SLOT_CHOICES = [
    *(
        SelectChoice(f"{_hhmm(start)}-{_hhmm(end)}", f"{_hhmm(start)}–{_hhmm(end)}")
        for start, end in ARRIVAL_SLOTS
    ),
    SelectChoice(ANOTHER_TIME, "Another time"),
]
# Lists of times, not <input type=time>: a list reads 24-hour whatever the browser's locale.
TIME_CHOICES = [SelectChoice("", "--:--")] + [
    SelectChoice(_hhmm(t), _hhmm(t)) for t in TIMES_OF_DAY
]

LISTED_TIMES = frozenset(c.value for c in TIME_CHOICES if c.value)


class TimeOfDayField(SelectField):
    """A time of day chosen from TIME_CHOICES ("HH:MM"); anything else is refused in words."""

    def __init__(self, label, **kwargs):
        super().__init__(label, choices=TIME_CHOICES, validate_choice=False, **kwargs)

    def pre_validate(self, form):
        if self.data and self.time is None:
            raise ValidationError("Pick a time from the list (HH:MM, every half hour).")

    @property
    def time(self) -> time | None:
        """The time chosen; None when none is, or what was sent is not on the list."""
        return time.fromisoformat(self.data) if self.data in LISTED_TIMES else None


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
    slot = RadioField(
        "Arrival window",
        choices=SLOT_CHOICES,
        validators=[InputRequired("Pick an arrival window, or another time.")],
    )
    start = TimeOfDayField("From")
    end = TimeOfDayField("Until")
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
    def another_time(self) -> bool:
        return self.slot.data == ANOTHER_TIME

    def validate_day(self, field):
        today = datetime.now(display_zone()).date()
        if field.data and field.data < today:
            raise ValidationError("Pick today or a later day.")
        if field.data and field.data > today + timedelta(days=365):
            raise ValidationError("Bookings can be made up to a year ahead.")

    def validate_start(self, field):
        if self.another_time and not field.data:
            raise ValidationError("Pick a start time.")

    def validate_end(self, field):
        if not self.another_time:
            return
        if not field.data:
            raise ValidationError("Pick an end time.")
        if self.start.time and field.time and field.time <= self.start.time:
            raise ValidationError("The end time must be after the start time.")

    def window(self) -> tuple[datetime, datetime]:
        """The requested window as aware datetimes in the person's zone."""
        if self.another_time:
            start, end = self.start.time, self.end.time
        else:
            start, end = (time.fromisoformat(t) for t in self.slot.data.split("-"))
        zone = display_zone()
        return datetime.combine(self.day.data, start, zone), datetime.combine(
            self.day.data, end, zone
        )

    def window_field(self):
        """The field a refusal of the window belongs beside: the slot, or the custom start."""
        return self.start if self.another_time else self.slot
