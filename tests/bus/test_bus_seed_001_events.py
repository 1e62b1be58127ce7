"""The examples of seed 001 (typed events, emit_event, handle_event, origin), ported."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import pytest

from net import bus as events

# -- Basic Usage: BeforeMessageSend -------------------------------------------------------


class BeforeMessageSend(events.Event):
    """An event emitted just before sending a message."""

    message: str


def test_basic_usage_before_message_send(capsys: pytest.CaptureFixture[str]) -> None:
    @events.handle_event(BeforeMessageSend)
    def add_message_watermark(event: BeforeMessageSend) -> None:
        print(f"Original message: {event.message}")
        event.message = f"{event.message} (sent from Canvas)"

    def send_message(message: str) -> None:
        message_event = events.emit_event(BeforeMessageSend, message=message)
        print(f"Sending message: {message_event.message}")

    send_message(message="Hello, world!")
    assert capsys.readouterr().out.splitlines() == [
        "Original message: Hello, world!",
        "Sending message: Hello, world! (sent from Canvas)",
    ]


# -- Defining Events: SignupFormSubmitted (a form without Django) --------------------------


class SignupFormSubmitted(events.Event):
    """An event for validating and cleaning signup data."""

    cleaned_data: dict[str, Any]
    # Our Event requires every field without a default, so the one the
    # handlers fill in gets one (copied per event; __init__ resets it anyway).
    error_messages: defaultdict[str, list[str]] = defaultdict(list)

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.error_messages = defaultdict(list)

    def add_error(self, field_name: str, error_message: str) -> None:
        """Add an error to the form submission."""
        self.error_messages[field_name].append(error_message)


class SignupForm:
    """A stand-in for the seed's Django form: ``clean`` emits the event."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.errors: dict[str, list[str]] = {}

    def add_error(self, field_name: str, message: str) -> None:
        self.errors.setdefault(field_name, []).append(message)

    def clean(self) -> dict[str, Any]:
        signup_submitted = events.emit_event(SignupFormSubmitted, cleaned_data=dict(self.data))
        cleaned_data = signup_submitted.cleaned_data
        for field_name, error_messages in signup_submitted.error_messages.items():
            for error_message in error_messages:
                self.add_error(field_name, error_message)
        return cleaned_data


def register_signup_validators() -> None:
    @events.handle_event(SignupFormSubmitted)
    def validate_email(event: SignupFormSubmitted) -> None:
        """Validate that the email address is owned by the company."""
        if not event.cleaned_data["email"].endswith("@mycompany.com"):
            event.add_error("email", "Must be a company email.")

    @events.handle_event(SignupFormSubmitted)
    def validate_password(event: SignupFormSubmitted) -> None:
        """Validate that the password meets the minimum complexity requirements."""
        if len(event.cleaned_data["password"]) < 8:
            event.add_error("password", "Must be at least 8 characters.")


def test_defining_events_signup_form_validation() -> None:
    register_signup_validators()
    bad = SignupForm({"email": "ada@example.com", "password": "short"})
    bad.clean()
    assert bad.errors == {
        "email": ["Must be a company email."],
        "password": ["Must be at least 8 characters."],
    }
    good = SignupForm({"email": "ada@mycompany.com", "password": "long enough"})
    assert good.clean() == {"email": "ada@mycompany.com", "password": "long enough"}
    assert good.errors == {}


# -- Emitting Events ------------------------------------------------------------------------


def test_emitting_events_without_fields() -> None:
    class CustomEvent(events.Event):
        pass

    assert isinstance(events.emit_event(CustomEvent), CustomEvent)


def test_emitting_events_with_fields() -> None:
    class CustomEvent(events.Event):
        argument: str

    assert events.emit_event(CustomEvent, argument="hello world!").argument == "hello world!"


def test_emit_event_returns_the_event_after_all_handlers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class CustomEvent(events.Event):
        argument: str

    @events.handle_event(CustomEvent)
    def handle_custom_event(event: CustomEvent) -> None:
        print(event.argument)
        event.argument = "hello new world!"

    custom_event = events.emit_event(CustomEvent, argument="hello world!")
    print(custom_event.argument)
    assert capsys.readouterr().out.splitlines() == ["hello world!", "hello new world!"]


# -- Handling Events ------------------------------------------------------------------------


def test_handling_events(capsys: pytest.CaptureFixture[str]) -> None:
    class MyEvent(events.Event):
        pass

    @events.handle_event(MyEvent)
    def handle_my_event(event: MyEvent) -> None:
        print("MyEvent fired!")

    events.emit_event(MyEvent)
    assert capsys.readouterr().out == "MyEvent fired!\n"


# -- Error Handling -------------------------------------------------------------------------


def test_error_handling_other_handlers_still_run(caplog: pytest.LogCaptureFixture) -> None:
    class MyEvent(events.Event):
        pass

    ran: list[str] = []

    @events.handle_event(MyEvent)
    def raises(event: MyEvent) -> None:
        raise RuntimeError("handler bug")

    @events.handle_event(MyEvent)
    def still_runs(event: MyEvent) -> None:
        ran.append("still_runs")

    events.emit_event(MyEvent)
    assert ran == ["still_runs"]
    assert "raises" in caplog.text and "Traceback" in caplog.text


# -- The origin keyword ---------------------------------------------------------------------


class OriginEvent(events.Event):
    argument: str


def custom_action_one() -> None:
    custom_event = events.emit_event(OriginEvent, origin=custom_action_one, argument="hello world!")
    print(custom_event.argument)


def custom_action_two() -> None:
    custom_event = events.emit_event(OriginEvent, origin=custom_action_two, argument="hello world!")
    print(custom_event.argument)


def test_the_origin_keyword(capsys: pytest.CaptureFixture[str]) -> None:
    @events.handle_event(OriginEvent, origin=custom_action_one)
    def handle_custom_action_one(event: OriginEvent) -> None:
        print(event.argument)
        event.argument = "hello new world!"

    custom_action_one()
    assert capsys.readouterr().out.splitlines() == ["hello world!", "hello new world!"]
    custom_action_two()
    assert capsys.readouterr().out.splitlines() == ["hello world!"]


# -- Record Lifecycle Events: log a message when settings change ----------------------------


class Setting:
    """A stand-in for the seed's settings model."""

    def __init__(self, key: str, value: object, sensitive: bool = False) -> None:
        self.key = key
        self.value = value
        self.sensitive = sensitive


logger = logging.getLogger("tests.bus.settings")


def save_setting(setting: Setting, value: object) -> None:
    """Code managing records: emits the lifecycle events, origin = the model class."""
    diff = events.record_diff({"value": setting.value}, {"value": value})
    events.emit_event(events.PreRecordUpdate, origin=Setting, record=setting, diff=diff)
    setting.value = value
    events.emit_event(events.PostRecordUpdate, origin=Setting, record=setting, diff=diff)


def test_record_lifecycle_log_setting_change(caplog: pytest.LogCaptureFixture) -> None:
    @events.handle_event(events.PostRecordUpdate, origin=Setting)
    def handle_setting_change(event: events.PostRecordUpdate[Setting]) -> None:
        """Log a message when a setting changes."""
        setting = event.record
        diff = event.diff
        if "value" not in diff:
            return
        old_value, new_value = diff["value"]
        if setting.sensitive:
            old_value, new_value = "[REDACTED]", "[REDACTED]"
        logger.info(
            "A setting was changed.",
            extra={"setting": setting.key, "old_value": old_value, "new_value": new_value},
        )

    with caplog.at_level(logging.INFO, logger="tests.bus.settings"):
        save_setting(Setting("theme", "light"), "dark")
        save_setting(Setting("api_key", "old-secret", sensitive=True), "new-secret")
        save_setting(Setting("same", 1), 1)  # no change: no "value" in the diff
    records = [r for r in caplog.records if r.name == "tests.bus.settings"]
    assert [(r.setting, r.old_value, r.new_value) for r in records] == [  # type: ignore[attr-defined]
        ("theme", "light", "dark"),
        ("api_key", "[REDACTED]", "[REDACTED]"),
    ]
