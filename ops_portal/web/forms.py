"""The form behind every button on a booking card, shaped by the lifecycle table."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional

from ..domain.lifecycle import LIFECYCLE, Action
from ..domain.numbers import is_ascii_digits
from ..domain.text import MAX_LENGTHS

CONFIRMED_ACTIONS = frozenset({Action.CANCEL, Action.FORCE_ASSIGN, Action.FORCE_CANCEL})
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
                    if name in ("reason", "provider_id", "confirm")
                    else f"{name}: {message}"
                )
        return "The form is incomplete."
