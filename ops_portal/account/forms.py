from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from ..domain.schedule import COMMON_ZONES, all_zones


class TimeZoneForm(FlaskForm):
    # The common zones first, then every other, as a person scans a long list.
    time_zone = SelectField(
        "Show and enter times in",
        choices=[
            SelectChoice(zone, zone.replace("_", " "), optgroup=group)
            for group, zones in (
                ("Common", COMMON_ZONES),
                ("Every zone", all_zones()[len(COMMON_ZONES) :]),
            )
            for zone in zones
        ],
        validate_choice=False,  # the service says which zones exist, in words
    )
