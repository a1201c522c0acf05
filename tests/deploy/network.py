"""The cluster's network inside the rehearsal's private network namespace: names and Services.

Every Service's cluster IP is one loopback address (``SERVICE_HOST``): cluster DNS is played by
``/etc/hosts`` (each Service's short and qualified names), and the pods' processes listen on
all addresses, so a Service whose port is its pod's port needs nothing more. For the others
(``proxy-public``: port 80 to the proxy's 8000) :class:`ServicePorts` is a small kube-proxy
that forwards the Service's port to the pod's.

Pods started by the kubelet stand-in get their own addresses (127.0.A.B), as pod IPs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

SERVICE_HOST = "127.0.0.1"
CLUSTER_DOMAIN = "cluster.local"


def service_names(name: str, namespace: str) -> list[str]:
    return [
        name,
        f"{name}.{namespace}",
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}",
    ]


def hosts_text(services: Iterable[str], namespace: str, host: str = SERVICE_HOST) -> str:
    """An /etc/hosts naming every Service (and the API server's) at ``host``."""
    names = [*service_names("kubernetes", "default")]
    for name in services:
        names += service_names(name, namespace)
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{host}\t{name}" for name in dict.fromkeys(names)]
    return "\n".join(lines) + "\n"


def write_in_place(path: Path, text: str) -> None:
    """Rewrite a file keeping its inode: it is bind-mounted at /etc/hosts, and a bind mount of a
    file keeps showing the old inode when the file is replaced by a rename."""
    with open(path, "r+" if path.exists() else "w") as f:
        f.write(text)
        f.truncate()


def _labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True)
class Forward:
    service: str
    port: int  # the Service's port, listened on at SERVICE_HOST
    target: int  # the pod's port


def forwards(services: Iterable[dict], running_templates: Iterable[dict]) -> list[Forward]:
    """The Service ports that need forwarding: those whose selector matches a running pod
    template and whose ``targetPort`` (a number, or a container port's name) differs."""
    templates = list(running_templates)
    result = []
    for service in services:
        selector = (service.get("spec") or {}).get("selector") or {}
        for template in templates:
            if not _labels_match(selector, (template.get("metadata") or {}).get("labels") or {}):
                continue
            named = {
                p["name"]: p["containerPort"]
                for c in template["spec"]["containers"]
                for p in c.get("ports") or []
                if p.get("name")
            }
            for port in service["spec"].get("ports") or []:
                target = port.get("targetPort", port["port"])
                target = named[target] if isinstance(target, str) else int(target)
                if target != port["port"]:
                    result.append(Forward(service["metadata"]["name"], int(port["port"]), target))
    by_port: dict[int, Forward] = {}
    for forward in result:
        other = by_port.setdefault(forward.port, forward)
        if other.target != forward.target:
            raise ValueError(f"Services {other.service} and {forward.service} both need port {forward.port}")
    return list(by_port.values())


class ServicePorts:
    """Forward ``SERVICE_HOST:port`` to ``127.0.0.1:target`` for each :class:`Forward` (run its
    coroutines in one event loop, e.g. the cluster harness's)."""

    def __init__(self, host: str = SERVICE_HOST):
        self.host = host
        self.servers: list[asyncio.AbstractServer] = []
        self.connections: set[asyncio.Task] = set()

    async def start(self, wanted: Iterable[Forward]) -> None:
        for forward in wanted:
            self.servers.append(
                await asyncio.start_server(
                    lambda r, w, t=forward.target: self._connect(r, w, t), self.host, forward.port
                )
            )

    async def _connect(self, reader, writer, target: int) -> None:
        task = asyncio.current_task()
        self.connections.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
            except OSError:  # no endpoint listening: the connection is refused, as by kube-proxy
                return
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            writer.close()
            self.connections.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self.connections):
            task.cancel()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self.servers = []
