"""The closing rule: when the banner shows, who may sign in, which servers stop as closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jupyterhub_workshop.closing import DEFAULT_MESSAGE, Closing, may_sign_in, stopped_at_closing
from jupyterhub_workshop.service.policy import CLOSED, CullPolicy, ServerInfo, cull_time, decide

CLOSES = datetime(2026, 7, 18, 0, 0, tzinfo=UTC)  # Fri 17 Jul 18:00 in Denver


def closing(**kw) -> Closing:
    return Closing.parse("2026-07-17T18:00:00-06:00", zone="America/Denver", **kw)


def test_parse_requires_an_offset_and_names_the_setting():
    assert Closing.parse("") is None
    with pytest.raises(ValueError, match="closing: .* no UTC offset"):
        Closing.parse("2026-07-17T18:00:00")
    with pytest.raises(ValueError, match="notice days"):
        Closing.parse("2026-07-17T18:00:00Z", notice_days=-1)
    c = closing()
    assert c.at == CLOSES and c.notice == timedelta(days=2) and c.message == DEFAULT_MESSAGE


def test_the_banner_shows_from_the_notice_until_the_closing():
    c = closing()
    assert not c.announced(CLOSES - timedelta(days=2, seconds=1))
    assert c.announced(CLOSES - timedelta(days=2))
    assert c.announced(CLOSES - timedelta(seconds=1)) and not c.closed(CLOSES - timedelta(seconds=1))
    assert not c.announced(CLOSES) and c.closed(CLOSES)
    assert closing(notice_days=0.5).announced(CLOSES - timedelta(hours=11))
    assert not closing(notice_days=0.5).announced(CLOSES - timedelta(hours=13))
    assert c.local() == "Fri 17 Jul at 18:00 (America/Denver)"
    banner = c.banner("/services/workshop/download?a=1&b=2")
    assert banner.startswith("This hub closes on Fri 17 Jul at 18:00 (America/Denver). Download your work: ")
    assert 'href="/services/workshop/download?a=1&amp;b=2"' in banner
    assert "Download" not in c.banner(None)


def test_after_the_closing_only_staff_sign_in():
    c = closing()
    assert may_sign_in(None, False, CLOSES) and may_sign_in(c, False, CLOSES - timedelta(seconds=1))
    assert not may_sign_in(c, False, CLOSES) and may_sign_in(c, True, CLOSES)


def test_servers_stopped_at_the_closing():
    c = closing()
    before, after = CLOSES - timedelta(hours=1), CLOSES + timedelta(minutes=5)
    assert not stopped_at_closing(c, False, before, CLOSES - timedelta(seconds=1))
    assert stopped_at_closing(c, False, before, CLOSES) and stopped_at_closing(c, True, before, CLOSES)
    # a participant's server started afterwards (a sign-in before the closing) stops too; staff's not
    assert stopped_at_closing(c, False, after, after) and not stopped_at_closing(c, True, after, after)


def server(user, started, admin=False, groups=()):
    return ServerInfo(user, "", admin, frozenset(groups), started, started, True)


def test_the_cull_policy_stops_servers_as_closed_strongest_first():
    policy = CullPolicy(
        idle_timeout=timedelta(hours=1), closing=closing(), staff_groups={"instructors"}, exempt_groups=set()
    )
    early = CLOSES - timedelta(hours=3)  # idle long ago too: closed is reported
    servers = [
        server("p", early),
        server("i", early, groups={"instructors"}),
        server("i2", CLOSES + timedelta(minutes=1), groups={"instructors"}),
        server("a", CLOSES + timedelta(minutes=1), admin=True),
        server("p2", CLOSES + timedelta(minutes=1)),
    ]
    assert all(d.reason != CLOSED for d in decide(servers, set(), policy, CLOSES - timedelta(seconds=1)))
    now = CLOSES + timedelta(minutes=2)
    assert {(d.server.user, d.reason) for d in decide(servers, set(), policy, now)} == {
        ("p", CLOSED),
        ("i", CLOSED),
        ("p2", CLOSED),
    }
    (decision,) = [d for d in decide(servers, set(), policy, now) if d.server.user == "p"]
    assert decision.detail == "the hub closed on Fri 17 Jul at 18:00 (America/Denver)"
    # the admin page's "will be stopped": at the closing, as closed
    fresh = server("q", CLOSES - timedelta(minutes=10))
    assert cull_time(fresh, False, policy, CLOSES - timedelta(minutes=5)) == (CLOSES, CLOSED)
    assert cull_time(servers[2], False, policy, now)[1] == "idle"  # staff after: the usual rules


def test_a_closing_without_its_offset_is_refused_and_the_last_good_one_kept():
    from traitlets import TraitError

    from jupyterhub_workshop.closing import closing_trait_value
    from jupyterhub_workshop.service.app import WorkshopService

    assert closing_trait_value("") == ""  # the hub does not close
    service = WorkshopService()  # the authenticator's trait is checked by the same function
    service.closing = "2026-07-17T18:00:00-06:00"
    with pytest.raises(TraitError):
        service.closing = "2026-07-17T18:00"  # a naive time: in which zone?
    assert service.closing == "2026-07-17T18:00:00-06:00"
