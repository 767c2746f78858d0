"""missing_effects: the pure plan of what to write, given what the ledger says was written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from sla.effects import DesiredEffects, Effect, EffectKind, comment_marker, missing_effects

DUE = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)


def test_empty_desire_writes_nothing() -> None:
    assert missing_effects(DesiredEffects(), {}) == []
    assert missing_effects(DesiredEffects(), {"tag:x": "present", "due": "2026-01-01T00:00:00+00:00"}) == []


def test_everything_missing_in_stable_order() -> None:
    desired = DesiredEffects(
        due=DUE,
        tags_present=frozenset({"b", "a"}),
        comments={"resolution:warning": "W", "first_response:breach": "B"},
        actions={"resolution:breach:priority": (EffectKind.SET_PRIORITY, "urgent")},
    )
    assert missing_effects(desired, {}) == [
        Effect("due", EffectKind.SET_DUE, "2026-11-27T16:00:00+00:00"),
        Effect("tag:a", EffectKind.ADD_TAG, "a"),
        Effect("tag:b", EffectKind.ADD_TAG, "b"),
        Effect("comment:first_response:breach", EffectKind.COMMENT, "B"),
        Effect("comment:resolution:warning", EffectKind.COMMENT, "W"),
        Effect("action:resolution:breach:priority", EffectKind.SET_PRIORITY, "urgent"),
    ]


def test_due_is_compared_in_utc_and_rewritten_when_it_moves() -> None:
    cet = timezone(timedelta(hours=1))
    desired = DesiredEffects(due=DUE.astimezone(cet))
    assert missing_effects(desired, {"due": "2026-11-27T16:00:00+00:00"}) == []
    assert missing_effects(desired, {"due": "2026-11-27T15:00:00+00:00"}) == [
        Effect("due", EffectKind.SET_DUE, "2026-11-27T16:00:00+00:00")
    ]


def test_no_due_leaves_the_field_alone() -> None:
    assert missing_effects(DesiredEffects(due=None), {"due": "2026-11-27T15:00:00+00:00"}) == []


def test_only_tags_the_connector_added_are_removed() -> None:
    desired = DesiredEffects(tags_absent=frozenset({"mine", "never-added", "removed"}))
    ledger = {"tag:mine": "present", "tag:removed": "absent"}
    assert missing_effects(desired, ledger) == [Effect("tag:mine", EffectKind.REMOVE_TAG, "mine")]


def test_present_wins_over_absent_and_present_tags_already_there_are_skipped() -> None:
    desired = DesiredEffects(tags_present=frozenset({"t", "u"}), tags_absent=frozenset({"t"}))
    assert missing_effects(desired, {"tag:t": "present"}) == [Effect("tag:u", EffectKind.ADD_TAG, "u")]


def test_a_removed_tag_is_added_again_when_it_applies_again() -> None:
    desired = DesiredEffects(tags_present=frozenset({"t"}))
    assert missing_effects(desired, {"tag:t": "absent"}) == [Effect("tag:t", EffectKind.ADD_TAG, "t")]


def test_comments_and_actions_are_one_shot_whatever_the_ledger_value() -> None:
    desired = DesiredEffects(
        comments={"k": "body changed since"},
        actions={"k:assignee": (EffectKind.SET_ASSIGNEE, "lead-2")},
    )
    assert missing_effects(desired, {"comment:k": "posted", "action:k:assignee": "lead-1"}) == []


def test_ledger_values() -> None:
    assert Effect("tag:x", EffectKind.ADD_TAG, "x").ledger_value == "present"
    assert Effect("tag:x", EffectKind.REMOVE_TAG, "x").ledger_value == "absent"
    assert Effect("comment:k", EffectKind.COMMENT, "long body").ledger_value == "posted"
    assert (
        Effect("due", EffectKind.SET_DUE, "2026-11-27T16:00:00+00:00").ledger_value
        == "2026-11-27T16:00:00+00:00"
    )
    assert Effect("action:k:priority", EffectKind.SET_PRIORITY, "urgent").ledger_value == "urgent"


def test_action_kind_given_as_text_becomes_an_effect_kind() -> None:
    desired = DesiredEffects(actions={"k:priority": ("set_priority", "high")})  # type: ignore[dict-item]
    (effect,) = missing_effects(desired, {})
    assert effect.kind is EffectKind.SET_PRIORITY


def test_comment_marker() -> None:
    assert comment_marker("next_reply#2:warning") == "[sla-connector:next_reply#2:warning]"


tags = st.frozensets(st.sampled_from(["a", "b", "c", "d"]))


@given(
    tags,
    tags,
    st.dictionaries(st.sampled_from(["k1", "k2", "k3"]), st.text(max_size=5)),
    st.dictionaries(
        st.sampled_from(["tag:a", "tag:b", "comment:k1", "due"]),
        st.sampled_from(["present", "absent", "posted"]),
    ),
)
def test_applying_the_plan_leaves_nothing_missing(
    present: frozenset[str], absent: frozenset[str], comments: dict[str, str], ledger: dict[str, str]
) -> None:
    desired = DesiredEffects(due=DUE, tags_present=present, tags_absent=absent, comments=comments)
    ledger = dict(ledger)
    for effect in missing_effects(desired, ledger):
        ledger[effect.key] = effect.ledger_value
    assert missing_effects(desired, ledger) == []
    for tag in present:
        assert ledger[f"tag:{tag}"] == "present"
    for tag in absent - present:
        assert ledger.get(f"tag:{tag}") != "present"
