"""The first process of a private namespace: set up its mounts (and loopback), run one command,
reap orphans, forward signals, and exit with the command's status.

Run as root under ``unshare --mount --pid --fork --kill-child [--net] ...``, the way a container
runtime starts a container's init (tini)::

    unshare --mount --pid --fork --kill-child --mount-proc -- python nsinit.py SPEC.json

``SPEC.json``::

    {"loopback": true,                      # bring lo up (in a new network namespace)
     "scratch": "/abs/dir",                 # an existing directory for overlay layers
     "mounts": [                            # in the order given, parents before children
        {"target": "/etc/hosts", "source": "/abs/file", "readOnly": true},
        {"target": "/tmp", "tmpfs": true,     # "keep": host paths under the target that stay
         "keep": ["/tmp/checkout/.venv-hub"]}],  # visible in it, read-only, at the same path
     "cwd": "/srv/jupyterhub",
     "argv": ["jupyterhub", "--config", "..."],   # looked up on env's PATH
     "env": {"PATH": "..."},                # null: inherit this process's environment
     "report": "/abs/namespaces.json"}      # optional: where to write this process's namespaces

A mount target that does not exist (``/usr/local/etc/jupyterhub/...`` on a machine without
one) is created without touching the host: the deepest existing directory above it gets an
overlay whose upper layer is a tmpfs in ``scratch``, and the target is made in there (mounts
beneath that directory are hidden in this namespace, so give /etc/hosts and the like as mounts
of their own; all overlays are made before the first mount). A target right under ``/``
(``/homes``) is made in a root of our own (a tmpfs with the host's top-level entries bound in
it, chrooted into), since an overlay on ``/`` cannot hide what is made in it from the host. A
tmpfs with ``keep`` is made in
``scratch`` first, the kept paths bound into it, then moved onto its target: a checkout under
/tmp keeps its environments in a container's private /tmp. Everything
mounted here belongs to this mount namespace and vanishes with it; when the command exits, this
process (pid 1) exits and the kernel kills whatever is left in the pid namespace.

Standard library only, Python 3.11+: it runs before anything else exists in the namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import json
import os
import signal
import socket
import struct
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 1, 2, 4, 32, 4096, 8192, 16384
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def c(value):
        return None if value is None else os.fsencode(value)

    if _libc.mount(c(source), c(target), c(fstype), ctypes.c_ulong(flags), c(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype or 'bind'} {source or ''} on {target}: {os.strerror(err)}")


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def existing_base(target: str) -> str:
    """The deepest existing directory at or above ``target`` (symlinks resolved)."""
    path = os.path.normpath(target)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return os.path.realpath(path)


class Mounter:
    def __init__(self, scratch: str):
        self.scratch = scratch
        self.layers = 0
        self.overlaid: list[str] = []
        self.own_root = False  # chrooted into a root of our own (see new_root)
        self.host_entries: set[str] = set()  # its top-level entries that are the host's

    def _scratch(self) -> str:
        """A new directory in this namespace's scratch tmpfs (mounted over ``scratch`` once)."""
        if self.layers == 0:
            _mount("tmpfs", self.scratch, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700")
        self.layers += 1
        return os.path.join(self.scratch, str(self.layers))

    def _overlay(self, base: str) -> None:
        """Make ``base`` writable in this namespace only: an overlay with a tmpfs upper layer."""
        layer = self._scratch()
        upper = os.path.join(layer, "upper")
        work = os.path.join(layer, "work")
        os.makedirs(upper)
        os.makedirs(work)
        _mount("overlay", base, "overlay", 0, f"lowerdir={base},upperdir={upper},workdir={work}")
        self.overlaid.append(base)

    def new_root(self) -> None:
        """Chroot into a root of our own: a tmpfs holding the host's top-level entries (directories
        bound with their mounts, symlinks copied), so that mount points can be made at the top
        (a Job's /homes, /archive). An overlay mounted on / would not do: this process's root
        stays the old one beneath it, and what it makes there lands on the host."""
        root = os.path.join(self._scratch(), "root")
        os.makedirs(root)
        _mount("tmpfs", root, "tmpfs", 0, "mode=0755")
        for name in sorted(os.listdir("/")):
            source, target = "/" + name, os.path.join(root, name)
            self.host_entries.add(source)
            if os.path.islink(source):
                os.symlink(os.readlink(source), target)
            elif os.path.isdir(source):
                os.mkdir(target)
                _mount(source, target, None, MS_BIND | MS_REC)
            elif os.path.isfile(source):
                with open(target, "a"):
                    pass
                _mount(source, target, None, MS_BIND)
        os.chroot(root)
        os.chdir("/")
        self.own_root = True

    def _writable(self, base: str) -> bool:
        """Mount points may be made in ``base`` here: in our own root outside the host's entries
        (``/homes``, made here), or in an overlay already made."""
        if self.own_root and (base == "/" or "/" + base.split("/")[1] not in self.host_entries):
            return True
        return any(base == o or base.startswith(o.rstrip("/") + "/") for o in self.overlaid)

    def prepare(self, targets: list[str]) -> None:
        """Overlay, before any mount, every existing directory under which a mount point must
        be made: an overlay mounted later would hide the mounts already made beneath it. A
        mount point at the top of the tree needs a root of our own first."""
        bases = sorted({existing_base(t) for t in targets if not os.path.lexists(t)}, key=len)
        if "/" in bases:
            self.new_root()
        for base in bases:
            if not self._writable(base):
                self._overlay(base)

    def ensure(self, target: str, directory: bool) -> None:
        """Create the mount point ``target`` (a directory, or an empty file), in an overlay when
        it does not exist yet, so nothing is created on the host's file systems."""
        if os.path.lexists(target):
            return
        base = existing_base(os.path.dirname(target))
        if not self._writable(base):
            self._overlay(base)
        if directory:
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "a"):
                pass

    def mount(self, spec: dict) -> None:
        target = os.path.normpath(spec["target"])
        if spec.get("tmpfs"):
            self.ensure(target, directory=True)
            keep = [os.path.normpath(path) for path in spec.get("keep") or []]
            if not keep:
                _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, spec.get("options", "mode=1777"))
                return
            staging = os.path.join(self._scratch(), "tmpfs")
            os.makedirs(staging)
            _mount("tmpfs", staging, "tmpfs", MS_NOSUID | MS_NODEV, spec.get("options", "mode=1777"))
            for path in keep:
                if not path.startswith(target.rstrip("/") + "/"):
                    raise ValueError(f"keep {path!r} is not under {target!r}")
                inside = os.path.join(staging, os.path.relpath(path, target))
                if os.path.isdir(path):
                    os.makedirs(inside, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(inside), exist_ok=True)
                    with open(inside, "a"):
                        pass
                _mount(path, inside, None, MS_BIND | MS_REC)
                _mount(None, inside, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
            _mount(staging, target, None, MS_MOVE)
            return
        source = spec["source"]
        self.ensure(target, directory=os.path.isdir(source))
        _mount(source, target, None, MS_BIND | MS_REC)
        if spec.get("readOnly"):
            _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def run(spec: dict) -> int:
    if spec.get("loopback"):
        loopback_up()
    mounter = Mounter(spec.get("scratch") or "")
    mounter.prepare([os.path.normpath(entry["target"]) for entry in spec.get("mounts") or []])
    for entry in spec.get("mounts") or []:
        mounter.mount(entry)
    if spec.get("report"):  # so the caller can check afterwards that nothing is left in them
        with open(spec["report"], "w") as f:
            json.dump({kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("pid", "mnt", "net")}, f)
    env = spec.get("env")
    env = dict(os.environ) if env is None else {str(k): str(v) for k, v in env.items()}
    argv = [str(a) for a in spec["argv"]]
    cwd = spec.get("cwd") or "/"

    child = os.fork()
    if child == 0:
        try:
            os.setpgid(0, 0)  # signals to the namespace's process group reach only this init
            for signum in FORWARDED:
                signal.signal(signum, signal.SIG_DFL)
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        except BaseException as e:  # noqa: BLE001 -- report anything, then leave the child
            print(f"nsinit: cannot run {argv!r} in {cwd}: {e}", file=sys.stderr, flush=True)
        os._exit(127)

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    while True:  # reap every orphan of the namespace until the command itself exits
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 127
        if pid == child:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    sys.stdout.flush()
    os._exit(run(spec))


if __name__ == "__main__":
    main()
