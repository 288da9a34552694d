"""The form behind every button on a booking card, shaped by the lifecycle table."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, Length, NumberRange, Optional

from ..domain.catalog import SERVICES
from ..domain.lifecycle import LIFECYCLE, Action
from ..domain.numbers import is_ascii_digits
from ..domain.text import MAX_LENGTHS

CONFIRMED_ACTIONS = frozenset(action for action, rule in LIFECYCLE.items() if rule.confirms)
# Actions that end or undo work: drawn as dangerous buttons.
DANGER_ACTIONS = frozenset({Action.CANCEL, Action.REJECT, Action.FORCE_CANCEL, Action.MARK_FAILED})


class DigitsField(IntegerField):
    """A whole number written in ASCII digits. int() would also read "１" (fullwidth) or
    " 7 " as a number; no form of ours ever sends those, so they are refused."""

    def process_formdata(self, valuelist):
        if valuelist and valuelist[0] and not is_ascii_digits(valuelist[0]):
            self.data = None
            raise ValueError(self.gettext("Not a valid integer value."))
        super().process_formdata(valuelist)


class ActionForm(FlaskForm):
    version = DigitsField(validators=[Optional(), NumberRange(min=1)])
    reason = TextAreaField(validators=[Optional(), Length(max=MAX_LENGTHS["reason"])])
    # One of the rule's reason_presets, or empty ("Other…": the free text alone).
    reason_preset = StringField(validators=[Optional()])
    provider_id = DigitsField(validators=[Optional(), NumberRange(min=1)])
    confirm = BooleanField()

    action: Action

    @classmethod
    def for_action(cls, action: Action) -> ActionForm:
        form = cls()
        form.action = action
        return form

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        rule = LIFECYCLE[self.action]
        if rule.asks_reason and not (self.reason.data or "").strip():
            self.reason.errors = [
                *self.reason.errors,
                f"Please give a reason to {rule.label.lower()}.",
            ]
            valid = False
        preset = self.reason_preset.data or ""
        if preset and preset not in rule.reason_presets:
            self.reason_preset.errors = [
                *self.reason_preset.errors,
                "Choose one of the reasons offered, or write your own.",
            ]
            valid = False
        if rule.takes_provider and not self.provider_id.data:
            self.provider_id.errors = [*self.provider_id.errors, "Choose a provider."]
            valid = False
        if self.action in CONFIRMED_ACTIONS and not self.confirm.data:
            self.confirm.errors = [
                *self.confirm.errors,
                f"Tick the box to confirm: {rule.label.lower()}.",
            ]
            valid = False
        return valid

    def first_error(self) -> str:
        for name, errors in self.errors.items():
            if errors:
                message = errors[0]
                return (
                    message
                    if name in ("reason", "reason_preset", "provider_id", "confirm")
                    else f"{name}: {message}"
                )
        return "The form is incomplete."

    def given_reason(self) -> str | None:
        """The reason as the event keeps it: the chosen preset, then anything typed beside it
        ("Plans changed: moving house"), or what was typed alone."""
        preset = self.reason_preset.data or ""
        # Kept as typed: the service refuses control characters that strip() would hide.
        typed = self.reason.data or ""
        if preset and typed.strip():
            return f"{preset}: {typed}"
        return preset or typed or None


class DutyForm(FlaskForm):
    """On or off duty: the state asked for ("on" or "off"), and why, if said."""

    on_duty = StringField(validators=[AnyOf(("on", "off"), message="Choose on or off duty")])
    reason = StringField(validators=[Optional(), Length(max=MAX_LENGTHS["reason"])])


class AutomationForm(FlaskForm):
    """Automation paused ("1") or running ("0"), as the board's switch asks for it."""

    paused = StringField(validators=[AnyOf(("1", "0"), message="paused must be 1 or 0")])


class ServicesForm(FlaskForm):
    """The services a provider does: a checkbox each (the service says which names exist)."""

    services = SelectMultipleField(
        choices=[SelectChoice(s, s) for s in SERVICES], validate_choice=False
    )
