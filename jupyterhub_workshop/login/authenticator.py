"""The ``workshop`` authenticator: pre-generated login cards, argon2id hashes, no user enumeration.

Configure with::

    c.JupyterHub.authenticator_class = "workshop"
    c.WorkshopAuthenticator.accounts_file = "accounts.yaml"

The accounts file is the allow list (no ``allow_all`` or ``allowed_users`` needed) and is
re-read when it changes, so ``credentials revoke``, ``restore`` and ``add`` take effect on the
next login without restarting the hub.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import jinja2
from jupyterhub.auth import Authenticator
from jupyterhub.handlers.login import LoginHandler
from tornado import web
from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Float, Integer, Unicode, default, validate

from ..closing import DEFAULT_MESSAGE, Closing, closing_trait_value, may_sign_in
from ..files import write_atomically
from ..times import now_utc
from ..wording import count
from . import overlay
from .accounts import AccountBook, AccountsFileError, load_accounts
from .admission import Admission
from .passwords import dummy_verify, verify_password
from .seen import SEEN_FILE_NAME, cards_to_end, dump_seen, parse_seen, remember
from .throttle import BackoffPolicy, FailureTracker

TEMPLATES = Path(__file__).parent / "templates"


@cache
def _busy_page():
    # a small page of its own, not the hub's: it is served to a crowd and must stay cheap
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    return env.get_template("workshop-busy.html")


class LoginRefused(web.HTTPError):
    """A login turned away before or after the password check, with a message for the form.

    JupyterHub renders an ``HTTPError`` raised during a form login as the login page with the
    message shown, keeping the status and the ``headers`` (for ``Retry-After``).
    """

    def __init__(self, status_code: int, message: str, retry_after: int | None = None):
        super().__init__(status_code, message)
        self.headers = {"Retry-After": str(retry_after)} if retry_after else {}


def _lower_thread_priority(niceness: int) -> None:
    """Runs in each new hash thread. On Linux a thread id names one thread for setpriority."""
    if niceness <= 0:
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, current + niceness))
    except (AttributeError, OSError):
        pass  # not Linux: the threads keep the hub's priority


def _file_signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class WorkshopLoginHandler(LoginHandler):
    """The hub's login page and form, with the workshop's title and a pointer to the card."""

    def get_template(self, name, sync=False):
        if name != "login.html":
            return super().get_template(name, sync)
        key = "workshop_jinja2_env_sync" if sync else "workshop_jinja2_env"
        env = self.settings.get(key)
        if env is None:
            hub_env = self.settings["jinja2_env_sync" if sync else "jinja2_env"]
            env = hub_env.overlay(
                loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(TEMPLATES)), hub_env.loader])
            )
            self.settings[key] = env
        return env.get_template("workshop-login.html")

    async def post(self):
        # A crowd pressing "Sign in" together. Admission is decided here, synchronously: the
        # hub reaches authenticate() only after a hop through the event loop, by which time a
        # whole burst would have passed any check made there. The overflow is turned away
        # before any hub work; the admitted wait their turn, which costs the hub nothing.
        admission = self.authenticator.admission
        if not admission.try_admit():
            busy = admission.retry_after()
            self.set_status(503)
            self.set_header("Retry-After", str(busy))
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(_busy_page().render(seconds=busy))
            return
        self.workshop_admitted = True  # authenticate() must not count this login twice
        try:
            async with admission.turn():
                return await super().post()
        finally:
            admission.release()

    def render_template(self, name, sync=False, **ns):
        auth = self.authenticator
        ns.setdefault("workshop_title", auth.workshop_title or auth.accounts.title)
        ns.setdefault("workshop_login_hint", self.authenticator.login_hint)
        return super().render_template(name, sync=sync, **ns)


class WorkshopAuthenticator(Authenticator):
    """Log in with a pre-generated workshop card (username + password).

    Instructors become hub admins (see ``instructors_are_admins``) and members of the
    ``instructor_group``. Hash checks run on a small thread pool, never on the event loop,
    at most ``concurrent_logins`` are processed at once while up to ``max_logins_in_flight``
    wait their turn, and logins beyond that get a quick "busy, try again" answer with
    ``Retry-After`` instead of stalling the hub.
    """

    accounts_file = Unicode(
        "accounts.yaml",
        help="""
        Path of the accounts file written by ``jupyterhub-workshop credentials generate``.

        It holds one record per card (username, role, argon2id hash, validity window, revoked
        flag) and is the hub's allow list. Changes are picked up by the next login (and by a
        background check every ``accounts_reload_interval`` seconds); a file that fails validation on reload is
        logged and the last good accounts stay in force. An invalid file at start-up stops
        the hub with a message naming the file and line.
        """,
    ).tag(config=True)

    desk_file = Unicode(
        "",
        help="""
        Path of the card desk's file: what staff changed on the admin page's card desk
        (reissued, revoked, restored and late cards), in the accounts file's format, written by
        the workshop service and merged over ``accounts_file`` (the desk's new passwords win;
        a card revoked in either file is revoked). Keep it on the hub's own volume, beside the
        hub's database, so a restart or upgrade keeps it. Empty: no card desk. A missing file
        is an empty desk.
        """,
    ).tag(config=True)

    end_sessions = Bool(
        True,
        help="""
        When a card that could sign in is revoked, reissued, removed or leaves its window
        (noticed within ``accounts_reload_interval`` seconds of either file changing), end
        everything the account holds at once: its login cookies (a new ``cookie_id``), its
        API and OAuth tokens, and its servers (removed from the proxy and stopped; the home
        and its files stay). Without this the hub's own ``auth_refresh_age`` and the
        single-user servers' ``HubAuth.cache_max_age`` (300 s each) keep a lost card working
        for minutes.
        """,
    ).tag(config=True)

    seen_file = Unicode(
        SEEN_FILE_NAME,
        help="""
        Path of the file where the hub keeps what it last saw of each card (a digest of its
        password hash, its revoked flag and window; no hash, no password), rewritten whenever
        the accounts are loaded. At start-up the hub compares the accounts with it and ends
        the sessions of every card revoked, reissued, removed or moved out of its window while
        the hub was down, as ``end_sessions`` does for a change noticed while running: a
        ``credentials revoke`` followed by a ``helm upgrade`` that restarts the hub leaves the
        finder of a lost card nothing. Relative paths are from the hub's working directory, its data directory
        (``/srv/jupyterhub`` on Zero to JupyterHub, where the chart puts it). A missing or
        unreadable file (the first start, an upgrade from a version without it) is logged and
        ends nobody's session. Empty: not kept, and changes made while the hub is down are
        not noticed.
        """,
    ).tag(config=True)

    accounts_reload_interval = Float(
        2.0,
        help="""
        Seconds between background checks of the accounts file, so a bad edit is logged
        promptly. Logins check the file too (one ``stat``), so they always see the latest
        good version.
        """,
    ).tag(config=True)

    workshop_title = Unicode(
        "",
        help="""
        Workshop name shown above the login form, e.g. 'ESIP Summer Meeting: Pangeo tutorial'.
        Default: the title the cards were generated with (``credentials generate --title``).
        """,
    ).tag(config=True)

    login_hint = Unicode(
        "Your username and password are on your login card.",
        help="Sentence shown above the login form telling people where their login is.",
    ).tag(config=True)

    closing = Unicode(
        "",
        help="""
        When the workshop ends: an ISO 8601 time with its UTC offset, e.g.
        2026-07-17T18:00:00-06:00 (the same as the workshop service's ``closing``). From then
        on participants cannot sign in (they see ``closing_message``) and those signed in are
        signed out at their next auth refresh; instructors still can, for the final report and
        the archive. Empty: the hub does not close.
        """,
    ).tag(config=True)

    @validate("closing")
    def _parsed_closing(self, proposal):
        return closing_trait_value(proposal.value)

    closing_message = Unicode(
        DEFAULT_MESSAGE,
        help="""
        What a participant signing in after ``closing`` reads: that the workshop has ended and
        how to reach the organizers, e.g. 'The workshop has ended. For a copy of your work,
        write to hub-admins@example.org by 31 July.'
        """,
    ).tag(config=True)

    def _closing(self) -> Closing | None:
        return Closing.parse(self.closing, message=self.closing_message)

    instructors_are_admins = Bool(
        True,
        help="Make accounts with role 'instructor' JupyterHub admins when they log in.",
    ).tag(config=True)

    instructor_group = Unicode(
        "instructors",
        help="""
        JupyterHub group that instructor accounts join when they log in (participants are
        removed from it). The workshop spawner and service read this group to grant writable
        shared data and exemptions.
        """,
    ).tag(config=True)

    hash_threads = Integer(
        help="""
        Threads that check password hashes (argon2id releases the GIL). About one per core:
        more threads do not make checks faster, they only take CPU from the hub.
        Default: the number of CPUs.
        """,
    ).tag(config=True)

    @default("hash_threads")
    def _default_hash_threads(self):
        return os.cpu_count() or 1

    hash_thread_niceness = Integer(
        10,
        help="""
        How much lower the hash threads' CPU priority is than the hub's own (a ``nice``
        increment, 0-19; Linux only). A rush of sign-ins keeps every core busy hashing; a
        lower priority lets the hub's event loop, which answers everyone else, go first.
        0 leaves the priority alone.
        """,
    ).tag(config=True)

    concurrent_logins = Integer(
        help="""
        Logins processed at once: the password check plus the hub's own sign-in work
        (recording the user, groups, the login cookie), tens of milliseconds of the hub's
        event loop per login. Other admitted logins wait their turn in arrival order, which
        costs the hub nothing. Two per hash thread keeps the threads busy while the hub
        finishes the previous sign-ins; more only lengthens the queue of work in front of
        every other request to the hub, so the hub answers everyone else more slowly during
        a rush. Default: 2 per hash thread.
        """,
    ).tag(config=True)

    @default("concurrent_logins")
    def _default_concurrent_logins(self):
        return 2 * max(1, self.hash_threads)

    max_logins_in_flight = Integer(
        help="""
        Logins admitted at once: being processed (see ``concurrent_logins``) or waiting their
        turn with the request held open. Beyond this a login form is answered at once with
        503 "busy, try again in N seconds" and a ``Retry-After`` header, spread so that a
        refused crowd comes back at the pace the hub can serve it. Default: 100 per hash
        thread, which is a few seconds of waiting at most (one hash check takes about 40 ms
        per thread; benchmarks/login_burst.py --max-in-flight measures other values).
        """,
    ).tag(config=True)

    @default("max_logins_in_flight")
    def _default_max_logins_in_flight(self):
        return 100 * max(1, self.hash_threads)

    failures_before_backoff = Integer(
        5,
        help="Consecutive failed logins for one username before each further attempt is delayed.",
    ).tag(config=True)

    backoff_base_seconds = Float(
        1.0,
        help="First backoff delay; it doubles with every further failure up to backoff_max_seconds.",
    ).tag(config=True)

    backoff_max_seconds = Float(
        60.0,
        help="""
        Longest delay between attempts for one username. Kept short on purpose: backoff, not
        lockout, so nobody can lock a participant out by typing wrong passwords for them.
        """,
    ).tag(config=True)

    max_username_length = Integer(
        64, help="Longer usernames fail like a wrong password, without a hash check."
    ).tag(config=True)

    max_password_length = Integer(
        256, help="Longer passwords fail like a wrong password (and cost the same to reject)."
    ).tag(config=True)

    @default("manage_groups")
    def _default_manage_groups(self):
        return True

    @default("any_allow_config")
    def _default_any_allow_config(self):
        # the accounts file is the allow list
        return True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.accounts: AccountBook = self._load_books()
        self._signature = self._signatures()
        self._reload_lock = asyncio.Lock()
        self._stopping: set[asyncio.Task] = set()  # servers of changed cards being stopped
        # cards changed while the hub was down whose logins are not ended yet: never served as
        # their user (refresh_user), and the seen file keeps the last run's view until they are
        self._unsettled: set[str] = set()
        self._seen_current = False  # whether the seen file may be rewritten from self.accounts
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, self.hash_threads),
            thread_name_prefix="workshop-hash",
            initializer=_lower_thread_priority,
            initargs=(self.hash_thread_niceness,),
        )
        self._failures = FailureTracker(
            BackoffPolicy(
                free_failures=self.failures_before_backoff,
                base_delay=self.backoff_base_seconds,
                max_delay=self.backoff_max_seconds,
            )
        )
        # Until logins have been timed, one hash check per thread is the guess of the hub's
        # time per login.
        dummy_verify("warm-up")  # the first call also makes the dummy hash
        started = time.perf_counter()
        dummy_verify("calibration")
        self.admission = Admission(
            self.max_logins_in_flight,
            self.concurrent_logins,
            seconds_per_login=(time.perf_counter() - started) / max(1, self.hash_threads),
        )
        self.log.info("Workshop accounts: %s from %s", self.accounts.summary(), self.accounts_file)
        if getattr(self.parent, "db", None) is not None:
            # constructed by the hub, after its database and before it serves anything
            self._compare_with_seen()
        self._watcher = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # constructed outside a hub (tests, tools): logins still check the file
        else:
            interval_ms = 1000 * max(self.accounts_reload_interval, 0.1)
            self._watcher = PeriodicCallback(self.refresh_accounts, interval_ms)
            self._watcher.start()

    def get_handlers(self, app):
        return [("/login", WorkshopLoginHandler)]

    # --- the accounts file ---------------------------------------------------------------

    def _signatures(self):
        return (_file_signature(self.accounts_file), self.desk_file and _file_signature(self.desk_file))

    def _load_books(self) -> AccountBook:
        """The organizer's accounts with the card desk's changes merged over them."""
        book = load_accounts(self.accounts_file)
        if self.desk_file and os.path.exists(self.desk_file):
            book = overlay.merge(book, load_accounts(self.desk_file))
        return book

    async def refresh_accounts(self) -> None:
        """Reload the accounts file and the desk file if either changed; keep the last good
        accounts on errors; end the sessions of cards that stopped working or changed password."""
        signature = self._signatures()
        if signature == self._signature:
            return
        async with self._reload_lock:
            if signature == self._signature:
                return
            self._signature = signature  # do not re-parse a bad file until it changes again
            try:
                accounts = await asyncio.get_running_loop().run_in_executor(None, self._load_books)
            except AccountsFileError as e:
                self.log.error(
                    "Accounts file changed but is invalid; keeping the last good accounts (%s).\n%s",
                    self.accounts.summary(),
                    e,
                )
                return
            before, self.accounts = self.accounts, accounts
            self.log.info("Reloaded workshop accounts: %s", accounts.summary())
            ended = overlay.changed_cards(before, accounts, now_utc()) if self.end_sessions else []
            # every account's logins and tokens first (instant), then all their servers at once:
            # a `credentials generate --force` changes every card, and no one waits for a stop
            known = [name for name in ended if self._try_end_logins(name)]
            if self._seen_current:
                # after the logins ended: a hub stopped before this write ends them again at start
                await asyncio.get_running_loop().run_in_executor(None, self._save_seen, accounts)
        if known:
            # in the background: a sign-in that noticed the change does not wait for stops
            self._background(self._stop_all(known))

    def _background(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _stop_all(self, names) -> None:
        await self._hub_started()
        users = [user for name in names if (user := self.parent.users.get(name)) is not None]
        results = await asyncio.gather(*(self._stop_servers(u) for u in users), return_exceptions=True)
        for user, result in zip(users, results):
            if isinstance(result, BaseException):
                self.log.error("Could not stop every server of %s: %r", user.name, result)

    async def _hub_started(self) -> None:
        """Return once the hub has started: its spawners loaded and checked (or being checked),
        its proxy up. A server of a card changed while the hub was down is stopped only then."""
        # JupyterHub (5.5 and 6.1) resolves this at the end of its start(); it has no public
        # signal, and the tests run on both versions
        started = getattr(self.parent, "_start_future", None)
        if started is not None and not started.done():
            await asyncio.shield(started)

    # --- what the hub last saw: cards changed while it was down -----------------------------

    def _read_seen(self):
        """The cards as the hub last saw them; {} (nothing known) when there is no usable file."""
        try:
            with open(self.seen_file, encoding="utf-8") as f:
                return parse_seen(f.read())
        except FileNotFoundError:
            self.log.info(
                "No record of the cards the hub saw last (%s): a first start or an upgrade; "
                "no session is ended for changes made while the hub was down",
                self.seen_file,
            )
        except (OSError, UnicodeDecodeError, ValueError) as e:
            self.log.error(
                "Cannot read the record of the cards the hub saw last (%s: %s); no session is "
                "ended for changes made while the hub was down, and the record is rewritten",
                self.seen_file,
                e,
            )
        return {}

    def _save_seen(self, book: AccountBook) -> None:
        if not self.seen_file:
            return
        try:
            write_atomically(self.seen_file, dump_seen(remember(book)))  # hub-only, 0600
        except OSError as e:
            self.log.error("Could not write %s: %s", self.seen_file, e)

    def _compare_with_seen(self) -> None:
        """At start-up, end the sessions of every card changed since the hub last saw them.

        The hub constructs its authenticator once its database is open and before it serves
        any request, so the logins (cookie ids, tokens: database rows) are ended here, before
        a request could present them. The servers are stopped once the hub has started (they
        need its spawners and proxy), and only then is the seen file rewritten: a hub that
        stops half-way ends the same cards again at its next start.
        """
        if not self.seen_file:
            return
        ended = cards_to_end(self._read_seen(), self.accounts, now_utc()) if self.end_sessions else []
        if not ended:
            self._seen_current = True
            self._save_seen(self.accounts)
            return
        self.log.warning(
            "%s changed while the hub was down (revoked, reissued, removed or out of their "
            "window); ending their sessions: %s",
            count(len(ended), "card"),
            ", ".join(ended),
        )
        self._unsettled = set(ended)
        self._settle_logins()
        self._background(self._finish_start_up(ended))

    def _settle_logins(self) -> None:
        """End the logins of the cards changed while the hub was down, those not ended yet."""
        for name in sorted(self._unsettled):
            try:
                self._end_logins(name)
            except Exception:
                self.log.exception("Could not end the logins of %s; trying again", name)
                continue
            self._unsettled.discard(name)

    async def _finish_start_up(self, names) -> None:
        await self._stop_all(names)
        self._settle_logins()  # retries any that failed at construction
        if self._unsettled:
            return  # the seen file keeps the last run's view: the next start ends them
        async with self._reload_lock:  # after any reload that is already on its way
            self._seen_current = True
            await asyncio.get_running_loop().run_in_executor(None, self._save_seen, self.accounts)

    async def end_sessions_of(self, username: str) -> None:
        """End what ``username`` holds in the hub: login cookies, tokens, servers.

        The login cookie names the user's ``cookie_id``: a new one signs out every browser at
        once. OAuth tokens (what single-user servers accepted) and API tokens are deleted. The
        servers are taken off the proxy first (no request reaches them from then on) and then
        stopped: a single-user server trusts a token it has checked for ``cache_max_age``, so
        only stopping it ends a finder's access at once; the home stays for the owner.
        """
        if self._end_logins(username):
            await self._stop_all([username])

    def _end_logins(self, username: str) -> bool:
        """A new ``cookie_id`` and no tokens for ``username``; False if the hub has never seen
        the name. Database rows only, not the hub's users: it runs before the hub has them."""
        from jupyterhub import orm
        from jupyterhub.utils import new_token

        db = getattr(self.parent, "db", None)
        if db is None:
            return False  # not in a hub (tests, tools): no sessions to end
        orm_user = orm.User.find(db, username)
        if orm_user is None:
            return False  # never signed in: nothing to end
        try:
            orm_user.cookie_id = new_token()
            for token in list(orm_user.api_tokens):  # OAuth, API and the servers' own tokens
                db.delete(token)
            db.commit()
        except Exception:
            db.rollback()
            raise
        self.log.info("Signed out workshop account %s everywhere (cookies, tokens)", username)
        return True

    def _try_end_logins(self, username: str) -> bool:
        """:meth:`_end_logins`, logging a failure (False) instead of raising it."""
        try:
            return self._end_logins(username)
        except Exception:
            self.log.exception("Could not end the logins of %s", username)
            return False

    async def _stop_servers(self, user) -> None:
        """Take ``user``'s servers off the proxy and stop them (a starting one once it started)."""
        app = self.parent
        stopped = []
        for server_name, spawner in list(user.spawners.items()):
            # a hub that took longer than init_spawners_timeout is still checking, at start-up,
            # whether the server survived the restart; a check has no future to wait for
            deadline = time.monotonic() + 300
            while spawner.pending == "check" and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            if spawner.pending == "spawn" and spawner._spawn_future is not None:
                try:  # the hub cannot stop a server half-way through its start
                    await asyncio.wait_for(asyncio.shield(spawner._spawn_future), 300)
                except Exception:
                    pass
            if not spawner.active or spawner.pending:
                continue
            # as the hub's own stop does: the server is "pending stop" meanwhile, so a sign-in
            # with the new password that asks for a server waits for this stop, not races it
            spawner._stop_pending = True
            try:
                try:
                    await app.proxy.delete_user(user, server_name)
                except Exception:
                    self.log.exception(
                        "Could not remove %s's server %r from the proxy", user.name, server_name
                    )
                await user.stop(server_name)
            finally:
                spawner._stop_pending = False
            stopped.append(server_name or "default")
        if stopped:
            self.log.info("Stopped the servers of workshop account %s: %s", user.name, ", ".join(stopped))

    def _usable_account(self, username: str):
        """The account if it may be signed in now: usable, and not a participant's after the
        closing."""
        account = self.accounts.get(username)
        now = now_utc()
        if (
            account is not None
            and account.usable_at(now)
            and may_sign_in(self._closing(), account.is_instructor, now)
        ):
            return account
        return None

    # --- login ---------------------------------------------------------------------------

    @staticmethod
    def _check(password_hash: str | None, password: str) -> bool:
        """Runs on a hash thread."""
        return dummy_verify(password) if password_hash is None else verify_password(password_hash, password)

    async def _check_password(self, password_hash: str | None, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._check, password_hash, password)

    async def authenticate(self, handler, data):
        # normalize first: the hub normalizes *after* authenticate, and we look up by name
        username = self.normalize_username((data.get("username") or "").strip())
        password = data.get("password") or ""

        # the login form admits its requests itself (WorkshopLoginHandler.post); anything
        # else calling authenticate() goes through the same cap here
        admitted_here = not getattr(handler, "workshop_admitted", False)
        if admitted_here and not self.admission.try_admit():
            retry = self.admission.retry_after()
            raise LoginRefused(
                503,
                f"Many people are signing in right now. Please try again in {count(retry, 'second')}.",
                retry_after=retry,
            )
        try:
            wait = self._failures.retry_after(username)
            if wait > 0:
                seconds = math.ceil(wait)
                raise LoginRefused(
                    429,
                    f"Too many failed sign-ins for this username. Try again in {count(seconds, 'second')}.",
                    retry_after=seconds,
                )
            await self.refresh_accounts()
            account = self.accounts.get(username)
            too_long = len(username) > self.max_username_length or len(password) > self.max_password_length
            if too_long:
                # same work as any other failure, on a bounded input
                account = None
                password = password[: self.max_password_length]
            ok = await self._check_password(account.password_hash if account else None, password)
        finally:
            if admitted_here:
                self.admission.release()

        if not ok or account is None or account.revoked:
            self._failures.record_failure(username)
            self.log.warning("Failed workshop login for %r", username[:32])
            return None
        self._failures.record_success(username)
        if self._unsettled:
            self._settle_logins()
            if username in self._unsettled:
                # the card changed while the hub was down and its old logins are not ended
                # yet: a cookie issued now would be ended with them
                raise LoginRefused(503, "Please try again in a minute.", retry_after=60)
        if not may_sign_in(self._closing(), account.is_instructor, now_utc()):
            # only a card holder gets this far: the workshop has ended, and whom to ask
            raise LoginRefused(403, self.closing_message)
        if (note := account.window_note(now_utc())) is not None:
            # only a card holder gets this far, so saying when the card works leaks nothing
            raise LoginRefused(403, f"This login card {note}.")
        return self._user_info(account)

    def _user_info(self, account) -> dict:
        info = {
            "name": account.username,
            "groups": [self.instructor_group] if account.is_instructor else [],
        }
        if self.instructors_are_admins and account.is_instructor:
            info["admin"] = True
        return info

    async def check_allowed(self, username, authentication=None):
        """Allowed means: the account exists, is inside its validity window and not revoked."""
        await self.refresh_accounts()
        return self._usable_account(username) is not None

    async def refresh_user(self, user, handler=None):
        """Sign out users whose card was revoked or has expired since they logged in, or was
        changed while the hub was down and their logins could not be ended yet."""
        if self._unsettled:
            self._settle_logins()
            if user.name in self._unsettled:
                return False
        await self.refresh_accounts()
        if user.name in self.accounts and self._usable_account(user.name) is None:
            self.log.info(
                "Workshop account %s is revoked, outside its window or closed; signing out", user.name
            )
            return False
        return True
