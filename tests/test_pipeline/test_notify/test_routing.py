"""Routing alert events to channels: who gets triggers, who gets resolves, and the delivery keys."""

from __future__ import annotations

from pipeline.notify.keys import delivery_key
from pipeline.notify.routing import Router
from schemas.alerts import AlertEvent
from tests.alert_samples import alert, alert_event

ACTIVE = {"pagerduty": True, "slack-critical": True, "slack-alerts": False, "email": True}


def plan(router: Router, **kwargs: object) -> list[tuple[str, str]]:
    return [(d.channel, d.kind) for d in router.route(alert(**kwargs)).deliveries]  # type: ignore[arg-type]


def test_firing_goes_to_the_active_channels_it_names_and_reports_the_others() -> None:
    router = Router({"pagerduty": True})
    routed = router.route(alert(channels=["pagerduty", "slack-critical"]))
    assert [(d.channel, d.kind) for d in routed.deliveries] == [("pagerduty", "trigger")]
    assert routed.unavailable == ["slack-critical"]
    assert routed.deliveries[0].key == delivery_key(routed.deliveries[0].alert.fingerprint,
                                                    "firing@2026-03-01T10:10:00Z", "pagerduty")


def test_resolve_goes_only_where_the_alert_fired() -> None:
    router = Router(ACTIVE)
    assert plan(router) == [("pagerduty", "trigger"), ("slack-critical", "trigger")]
    assert plan(router, change="resolved", window_end="2026-03-01T10:30:00Z") == [
        ("pagerduty", "resolve"), ("slack-critical", "resolve")]
    # resolved again (a duplicate event after the first resolve): nothing is open any more
    assert plan(router, change="resolved", window_end="2026-03-01T10:31:00Z") == []


def test_an_inhibited_firing_is_not_sent_nor_resolved() -> None:
    router = Router(ACTIVE)
    routed = router.route(alert(inhibited_by=["factory-service-down"]))
    assert routed.inhibited and routed.deliveries == []
    assert plan(router, change="resolved") == []


def test_deescalation_resolves_the_channels_the_alert_leaves() -> None:
    router = Router(ACTIVE)
    plan(router, channels=["pagerduty", "slack-critical"])
    assert plan(router, change="deescalated", severity="HIGH", channels=["slack-alerts", "email"],
                window_end="2026-03-01T10:20:00Z") == [
        ("slack-alerts", "trigger"), ("email", "trigger"), ("pagerduty", "resolve"), ("slack-critical", "resolve")]
    # slack-alerts does not send resolves: the e-mail channel alone hears of it
    assert plan(router, change="resolved", window_end="2026-03-01T10:40:00Z") == [("email", "resolve")]


def test_channels_without_send_resolved_get_no_resolve_but_pagerduty_always_does() -> None:
    router = Router({"pagerduty": True, "slack-critical": False})
    plan(router)
    assert plan(router, change="resolved", window_end="2026-03-01T10:30:00Z") == [("pagerduty", "resolve")]


def test_keys_tell_transitions_apart_and_a_duplicate_event_is_stale() -> None:
    router = Router(ACTIVE)
    first = [d.key for d in router.route(alert()).deliveries]
    duplicate = router.route(alert())
    assert duplicate.stale and duplicate.deliveries == []
    router.route(alert(change="resolved", window_end="2026-03-01T10:30:00Z"))
    again = [d.key for d in router.route(alert(window_end="2026-03-01T11:10:00Z")).deliveries]
    assert set(again).isdisjoint(first)


def test_events_published_again_out_of_order_are_stale_and_change_nothing() -> None:
    router = Router(ACTIVE)
    plan(router)
    plan(router, change="resolved", window_end="2026-03-01T10:30:00Z")
    replayed = router.route(alert())  # the worker published fire, resolve again: the old firing is stale
    assert replayed.stale and replayed.deliveries == []
    assert router.open == {}
    status = router.status(alert().fingerprint)
    assert status is not None and status.closed and status.transition == "resolved@2026-03-01T10:30:00Z"


def test_restore_from_statuses_so_a_restart_resolves_what_was_open() -> None:
    router = Router(ACTIVE)
    plan(router)
    status = router.status(alert().fingerprint)
    assert status is not None and status.open == ("pagerduty", "slack-critical")
    restarted = Router(ACTIVE)
    restarted.restore([status])
    assert restarted.route(alert()).stale  # its last event again
    assert plan(restarted, change="resolved", window_end="2026-03-01T10:30:00Z") == [
        ("pagerduty", "resolve"), ("slack-critical", "resolve")]


def test_forget_drops_a_closed_alert_only_while_its_last_event_is_the_one_expired() -> None:
    router = Router(ACTIVE)
    plan(router)
    assert not router.forget(router.status(alert().fingerprint))  # type: ignore[arg-type]  # open: kept
    plan(router, change="resolved", window_end="2026-03-01T10:30:00Z")
    closed = router.status(alert().fingerprint)
    assert closed is not None
    plan(router, window_end="2026-03-01T11:10:00Z")  # fired again since: not forgotten
    assert not router.forget(closed) and router.alerts_held == 1
    plan(router, change="resolved", window_end="2026-03-01T11:30:00Z")
    again = router.status(alert().fingerprint)
    assert again is not None and router.forget(again) and router.alerts_held == 0


def silenced(**kwargs: object) -> AlertEvent:
    return AlertEvent.model_validate({**alert_event(**kwargs), "silenced_by": ["s1"]})  # type: ignore[arg-type]


def test_a_silenced_firing_is_not_sent_and_a_paged_alert_still_resolves() -> None:
    router = Router(ACTIVE)
    assert router.route(silenced()).deliveries == []  # silenced firing: nothing opened
    assert plan(router, change="resolved") == []  # so its resolve goes nowhere
    other = Router(ACTIVE)
    assert plan(other) == [("pagerduty", "trigger"), ("slack-critical", "trigger")]  # paged before the silence
    assert other.route(silenced(change="repeat", window_end="2026-03-01T10:20:00Z")).deliveries == []
    assert plan(other, change="resolved", window_end="2026-03-01T10:30:00Z") == [
        ("pagerduty", "resolve"), ("slack-critical", "resolve")]  # the resolve still closes the page
