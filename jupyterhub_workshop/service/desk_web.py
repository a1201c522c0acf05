"""The card desk's pages (tornado handlers over :mod:`.desk`).

- ``/desk``: find a card by username, its state and what may be done to it; add late cards;
  the latest desk actions. Hub admins and ``card_desk_groups``; others get 403.
- ``/desk/confirm`` (POST): the confirmation page for one action, with a one-time token.
- ``/desk/do`` (POST): does the confirmed action once, audits it, and answers with the new
  cards (if any) in the printable cards' layout: ``Cache-Control: no-store``, and the page
  leaves itself after ``desk_cards_page_seconds``.
- ``/audit.csv``: every desk action (staff only).

Every POST carries the XSRF token (the application checks it).
"""

from __future__ import annotations

import asyncio
import csv
import io

from tornado import web

from ..login import overlay
from ..login.accounts import AccountsFileError
from ..login.printing import cards_html
from ..times import now_utc, parse_typed_time
from .desk import ACTIONS, MAX_LATE_CARDS, DeskRefusal, Staff, check_change, desk_role, late_batch, may_act
from .web import ServiceHandler

AUDIT_ON_PAGE = 20
DONE = {
    "revoke": "Revoked: the card no longer works, and its sessions and server were ended.",
    "restore": "Restored: the card works again.",
}


class DeskHandler(ServiceHandler):
    """Shared checks: the desk is configured, the user may use it."""

    @property
    def desk(self):
        desk = self.service.desk
        if desk is None:
            raise web.HTTPError(
                404, "The card desk needs WorkshopService.accounts_file and WorkshopService.desk_file."
            )
        return desk

    def staff(self) -> Staff:
        user = self.current_user
        staff = Staff(user["name"], bool(user.get("admin")), frozenset(user.get("groups") or ()))
        if desk_role(staff, self.service.card_desk_groups) is None:
            raise web.HTTPError(403, "Only hub admins and the card desk's groups may use the card desk.")
        return staff

    def no_store(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Pragma", "no-cache")
        self.set_header("Expires", "0")

    async def books(self):
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self.desk.books)
        except (OSError, AccountsFileError) as e:
            raise web.HTTPError(500, f"The accounts cannot be read: {e}") from None

    def request_fields(self) -> tuple[str, str, int, str]:
        action = self.get_body_argument("action", "")
        if action not in ACTIONS:
            raise web.HTTPError(400, f"Unknown desk action {action!r}.")
        username = self.get_body_argument("username", "").strip().lower()
        text = self.get_body_argument("count", "0").strip() or "0"
        try:
            how_many = int(text)
        except ValueError:
            raise web.HTTPError(
                400, f"The number of late cards must be a whole number, not {text!r}."
            ) from None
        until = self.get_body_argument("valid_until", "").strip()
        return action, username, how_many, until

    def valid_until(self, text: str):
        if not text:
            return None
        try:
            return parse_typed_time(text)
        except ValueError as e:
            raise web.HTTPError(400, f"The cards' end time: {e}") from None

    async def vet(self, staff: Staff, action: str, username: str, how_many: int, until: str):
        """Refuse (HTTP error, nothing changed) what may not or cannot be done."""
        file_book, desk_book = await self.books()
        merged = overlay.merge(file_book, desk_book)
        card = merged.get(username) if action != "add" else None
        why = may_act(staff, self.service.card_desk_groups, card, action)
        if why:
            raise web.HTTPError(404 if card is None and action != "add" else 403, why)
        now = now_utc()
        try:
            if action == "add":
                return late_batch(merged, how_many, self.valid_until(until), now)
        except DeskRefusal as e:
            raise web.HTTPError(e.status, e.message) from None
        why = check_change(file_book, desk_book, username, action, now)
        if why:
            raise web.HTTPError(409, why)
        return card


class DeskPageHandler(DeskHandler):
    """The desk: find a card, its state and actions; add late cards; the latest actions."""

    @web.authenticated
    async def get(self):
        staff = self.staff()
        self.no_store()
        file_book, desk_book = await self.books()
        merged = overlay.merge(file_book, desk_book)
        wanted = self.get_query_argument("username", "").strip().lower()
        card = merged.get(wanted) if wanted else None
        actions = []
        if card is not None:
            for action in ("reissue", "revoke", "restore"):
                if may_act(staff, self.service.card_desk_groups, card, action) is None and (
                    check_change(file_book, desk_book, wanted, action, now_utc()) is None
                ):
                    actions.append(action)
        self.render_page(
            "workshop-desk.html",
            wanted=wanted,
            card=card,
            actions=actions,
            changed_at_desk=wanted in desk_book,
            admin=desk_role(staff, self.service.card_desk_groups) == "admin",
            audit=self.service.store.desk_audit(AUDIT_ON_PAGE),
            max_late=MAX_LATE_CARDS,
            summary=merged.summary(),
            request_done=DONE.get(self.get_query_argument("done", ""), "") if card is not None else "",
        )


class DeskConfirmHandler(DeskHandler):
    """Step one of an action: check it and ask for confirmation (a one-time token)."""

    @web.authenticated
    async def post(self):
        staff = self.staff()
        self.no_store()
        action, username, how_many, until = self.request_fields()
        vetted = await self.vet(staff, action, username, how_many, until)
        token = self.service.desk_confirmations.issue(staff.name, (action, username, how_many, until))
        self.render_page(
            "workshop-desk-confirm.html",
            action=action,
            username=username,
            how_many=how_many,
            until=until,
            batch=vetted if action == "add" else None,
            card=vetted if action != "add" else None,
            token=token,
        )


class DeskDoHandler(DeskHandler):
    """Step two: the confirmed action, once; audited; new cards shown once."""

    @web.authenticated
    async def post(self):
        staff = self.staff()
        self.no_store()
        service = self.service
        action, username, how_many, until = self.request_fields()
        wait = service.desk_rate.retry_after(staff.name)
        if wait > 0:
            self.set_header("Retry-After", str(int(wait) + 1))
            raise web.HTTPError(429, f"Too many card desk actions; try again in {int(wait) + 1} s.")
        token = self.get_body_argument("confirm", "")
        if not service.desk_confirmations.take(token, staff.name, (action, username, how_many, until)):
            raise web.HTTPError(
                409,
                "This confirmation was already used or has expired: nothing was done now. "
                "Look the card up again to see its state.",
            )
        await self.vet(staff, action, username, how_many, until)
        service.desk_rate.record(staff.name)
        desk = self.desk
        async with desk.lock:
            try:
                outcome = await asyncio.get_running_loop().run_in_executor(
                    None, desk.apply, action, username, how_many, self.valid_until(until), now_utc()
                )
            except DeskRefusal as e:
                raise web.HTTPError(e.status, e.message) from None
        service.store.record_desk_action(now_utc(), staff.name, action, outcome.cards, outcome.detail)
        service.log.info("Card desk: %s %s %s", staff.name, action, " ".join(outcome.cards))
        if not outcome.new_cards:
            self.redirect(f"{self.settings['service_prefix']}desk?username={username}&done={action}")
            return
        file_book, _ = await self.books()
        page = cards_html(
            outcome.new_cards, file_book.title, file_book.hub_url, outcome.valid_from, outcome.valid_until
        )
        seconds = service.desk_cards_page_seconds
        back = f"{self.settings['service_prefix']}desk"
        page = page.replace(
            "</head>",
            f'<meta http-equiv="refresh" content="{seconds};url={back}">\n</head>',
            1,
        )
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(page)


class AuditCsvHandler(DeskHandler):
    """Every card desk action: ``at,staff,action,cards,detail`` (staff only)."""

    @web.authenticated
    def get(self):
        self.staff()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("at", "staff", "action", "cards", "detail"))
        for row in self.service.store.desk_audit():
            writer.writerow((row.at.isoformat(), row.staff, row.action, row.cards, row.detail))
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="workshop-desk-audit.csv"')
        self.finish(out.getvalue())


def desk_routes(prefix: str) -> list:
    return [
        (prefix + "desk", DeskPageHandler),
        (prefix + "desk/confirm", DeskConfirmHandler),
        (prefix + "desk/do", DeskDoHandler),
        (prefix + r"audit\.csv", AuditCsvHandler),
    ]
