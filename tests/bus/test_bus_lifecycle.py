"""Record lifecycle events: generic over the record type, emitted by code managing records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from net.bus import (
    Event,
    PostRecordCreate,
    PostRecordDelete,
    PostRecordUpdate,
    PreRecordCreate,
    PreRecordDelete,
    PreRecordUpdate,
    RecordEvent,
    emit_event,
    handle_event,
    lookup_event_class,
    record_diff,
)


@dataclass
class User:
    name: str
    email: str


class UserStore:
    """Code that manages records and emits their lifecycle events (origin: the record type)."""

    def __init__(self) -> None:
        self.rows: dict[str, User] = {}

    def create(self, user: User) -> None:
        emit_event(PreRecordCreate[User], origin=User, record=user)
        self.rows[user.name] = user
        emit_event(PostRecordCreate[User], origin=User, record=user)

    def update(self, name: str, **changes: Any) -> None:
        user = self.rows[name]
        before = vars(user).copy()
        pre = emit_event(
            PreRecordUpdate[User],
            origin=User,
            record=user,
            diff=record_diff(before, {**before, **changes}),
        )
        for key, (_, new) in pre.diff.items():  # a pre-handler may have changed the diff
            setattr(user, key, new)
        emit_event(PostRecordUpdate[User], origin=User, record=user, diff=pre.diff)

    def delete(self, name: str) -> None:
        user = self.rows[name]
        emit_event(PreRecordDelete[User], origin=User, record=user)
        del self.rows[name]
        emit_event(PostRecordDelete[User], origin=User, record=user)


def test_lifecycle_events_in_order_for_a_record_type() -> None:
    seen: list[tuple[str, str]] = []

    @handle_event(RecordEvent, origin=User)
    def every_user_event(event: RecordEvent[User]) -> None:
        seen.append((type(event).__name__, event.record.email))

    store = UserStore()
    store.create(User("ada", "ada@a.org"))
    store.update("ada", email="ada@b.org")
    store.delete("ada")
    assert seen == [
        ("PreRecordCreate", "ada@a.org"),
        ("PostRecordCreate", "ada@a.org"),
        ("PreRecordUpdate", "ada@a.org"),
        ("PostRecordUpdate", "ada@b.org"),
        ("PreRecordDelete", "ada@b.org"),
        ("PostRecordDelete", "ada@b.org"),
    ]


def test_pre_update_handler_can_change_the_update() -> None:
    @handle_event(PreRecordUpdate[User], origin=User)
    def lowercase_email(event: PreRecordUpdate[User]) -> None:
        if "email" in event.diff:
            old, new = event.diff["email"]
            event.diff["email"] = (old, new.lower())

    diffs: list[dict[str, tuple[Any, Any]]] = []
    handle_event(PostRecordUpdate, origin=User)(lambda event: diffs.append(event.diff))

    store = UserStore()
    store.create(User("bob", "bob@a.org"))
    store.update("bob", email="BOB@B.ORG")
    assert store.rows["bob"].email == "bob@b.org"
    assert diffs == [{"email": ("bob@a.org", "bob@b.org")}]


def test_other_origins_are_not_delivered() -> None:
    class Invoice:
        pass

    got: list[object] = []
    handle_event(PostRecordCreate, origin=Invoice)(lambda event: got.append(event.record))
    UserStore().create(User("c", "c@c"))
    assert got == []


def test_lifecycle_classes_are_events_with_stable_names() -> None:
    for cls in (PreRecordCreate, PostRecordCreate, PreRecordUpdate, PostRecordUpdate):
        assert issubclass(cls, RecordEvent) and issubclass(cls, Event)
        assert lookup_event_class(cls.event_name) is cls
    assert PostRecordUpdate.event_name == "net.bus.PostRecordUpdate"


def test_a_parameterised_event_is_an_instance_of_the_plain_class() -> None:
    event = PostRecordUpdate[User](record=User("a", "b"), diff={})
    assert type(event) is PostRecordUpdate


def test_update_diff_travels_through_from_fields() -> None:
    wire = {"record": {"id": 7}, "diff": {"value": [1, 2]}}
    event = PostRecordUpdate.from_fields(wire)
    assert event.diff == {"value": (1, 2)}


def test_record_diff() -> None:
    assert record_diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {
        "b": (2, 3),
        "c": (None, 4),
    }
    assert record_diff({"a": None}, {}) == {"a": (None, None)}
    assert record_diff({"a": 1}, {"a": 1}) == {}
