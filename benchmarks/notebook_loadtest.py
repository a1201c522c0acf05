"""The notebook load test's driver is not the bottleneck: 100 participants from one process.

A stand-in hub and single-user server (a small aiohttp app in a process of its own) answers the
parts of the hub, the Jupyter server and the kernel websocket protocol the driver uses: the login
form, spawn and its progress stream, the server page with its XSRF cookie, kernelspecs, contents
upload, sessions, the kernel websocket (kernel_info and execute answered at once: busy, reply,
idle), jupyter-resource-usage's metrics and kernel usage, and stopping. Everything the driver does
is measured in a driver process of its own: its CPU time per executed cell and its memory per
participant (peak RSS over the process's RSS before the run). The fixed-snippet load test runs
against the same stand-in in the same run, for comparison.

    .venv/bin/python benchmarks/notebook_loadtest.py --users 100 --cells 30

Goals: at most 2 ms of driver CPU per executed cell, at most 5 MB per participant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.hub import free_port, http_status, wait_for  # noqa: E402

PASSWORD = "bench-password"


# --- the stand-in: hub + single-user server + kernels that answer at once ----------------------


def stand_in(port: int) -> None:
    from aiohttp import web

    def text(body: str, **kw):
        return web.Response(text=body, content_type="text/html", **kw)

    async def login_page(request):
        resp = text(
            '<form><input type="hidden" name="_xsrf" value="tok"/>'
            '<input name="username"/><input name="password" type="password"/></form>'
        )
        resp.set_cookie("_xsrf", "tok", path="/hub/")
        return resp

    async def login(request):
        form = await request.post()
        if form.get("password") != PASSWORD:
            return text('<p class="login_error">Invalid username or password</p>', status=403)
        resp = web.HTTPFound("/hub/spawn")
        resp.set_cookie("user", form["username"], path="/")
        raise resp

    async def spawn(request):
        raise web.HTTPFound(f"/hub/spawn-pending/{request.cookies['user']}")

    async def progress(request):
        name = request.match_info["name"]
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        event = {"progress": 100, "ready": True, "url": f"/user/{name}/"}
        await resp.write(f"data: {json.dumps(event)}\n\n".encode())
        return resp

    async def user_model(request):
        return web.json_response({"name": request.match_info["name"], "pending": None, "servers": {}})

    async def server_page(request):
        resp = text("<html>lab</html>")
        resp.set_cookie("_xsrf", "tok", path=f"/user/{request.match_info['name']}/")
        return resp

    async def kernelspecs(request):
        return web.json_response({"default": "python3", "kernelspecs": {"python3": {"name": "python3"}}})

    async def contents_put(request):
        await request.read()
        return web.json_response({"type": "notebook"}, status=201)

    async def sessions_post(request):
        body = await request.json()
        kid = uuid.uuid4().hex
        return web.json_response(
            {"id": uuid.uuid4().hex, "path": body["path"], "kernel": {"id": kid}}, status=201
        )

    async def kernels_post(request):
        return web.json_response({"id": uuid.uuid4().hex}, status=201)

    async def no_content(request):
        return web.Response(status=204)

    async def metrics(request):
        return web.json_response(
            {"rss": 150 * 2**20, "limits": {"memory": {"rss": 2**31}}, "cpu_percent": 5.0, "cpu_count": 2}
        )

    async def kernel_usage(request):
        return web.json_response({"content": {"kernel_memory": 60 * 2**20, "kernel_cpu": 1.0}})

    def reply(parent: dict, channel: str, msg_type: str, content: dict) -> str:
        return json.dumps(
            {
                "header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "version": "5.3"},
                "parent_header": parent["header"],
                "metadata": {},
                "content": content,
                "buffers": [],
                "channel": channel,
                "msg_type": msg_type,
            }
        )

    async def channels(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        count = 0
        async for frame in ws:
            msg = json.loads(frame.data)
            kind = msg["header"]["msg_type"]
            await ws.send_str(reply(msg, "iopub", "status", {"execution_state": "busy"}))
            if kind == "execute_request":
                count += 1
                await ws.send_str(reply(msg, "iopub", "execute_input", {"code": msg["content"]["code"]}))
                await ws.send_str(reply(msg, "iopub", "stream", {"name": "stdout", "text": "42\n"}))
                await ws.send_str(
                    reply(msg, "shell", "execute_reply", {"status": "ok", "execution_count": count})
                )
            else:
                await ws.send_str(reply(msg, "shell", kind.replace("_request", "_reply"), {"status": "ok"}))
            await ws.send_str(reply(msg, "iopub", "status", {"execution_state": "idle"}))
        return ws

    app = web.Application()
    r = app.router
    r.add_get("/hub/login", login_page)
    r.add_post("/hub/login", login)
    r.add_get("/hub/spawn", spawn)
    r.add_get("/hub/api/users/{name}/server/progress", progress)
    r.add_get("/hub/api/users/{name}", user_model)
    r.add_delete("/hub/api/users/{name}/server", no_content)
    r.add_get("/user/{name}/", server_page)
    r.add_get("/user/{name}/api/kernelspecs", kernelspecs)
    r.add_put("/user/{name}/api/contents/{path:.*}", contents_put)
    r.add_post("/user/{name}/api/sessions", sessions_post)
    r.add_delete("/user/{name}/api/sessions/{sid}", no_content)
    r.add_post("/user/{name}/api/kernels", kernels_post)
    r.add_delete("/user/{name}/api/kernels/{kid}", no_content)
    r.add_get("/user/{name}/api/kernels/{kid}/channels", channels)
    r.add_get("/user/{name}/api/metrics/v1", metrics)
    r.add_get("/user/{name}/api/metrics/v1/kernel_usage/get_usage/{kid}", kernel_usage)
    r.add_get("/ping", lambda request: web.Response(text="ok"))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- the driver: one load test in this process, measured --------------------------------------


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def drive(url: str, mode: str, users: int, cells: int) -> dict:
    import nbformat

    from jupyterhub_workshop.login.printing import Card
    from jupyterhub_workshop.rehearsal.loadtest.notebook import lesson_from_json
    from jupyterhub_workshop.rehearsal.loadtest.participant import Options
    from jupyterhub_workshop.rehearsal.loadtest.run import run_loadtest

    cards = [Card(f"bench{i:03d}", PASSWORD) for i in range(users)]
    if mode == "notebook":
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        nb.cells = [nbformat.v4.new_code_cell(f"x{i} = {i} * 2\nprint(x{i})") for i in range(cells)]
        lesson = lesson_from_json(nbformat.writes(nb), "lesson.ipynb", "lesson.ipynb", upload=True)
        options = Options(url=url, lessons=(lesson,), think=(0.0, 0.0), sample_interval=2.0)
    else:
        options = Options(url=url, code="print(6 * 7)", expect="42")
    peak = [rss()]
    done = threading.Event()

    def watch():
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss())

    before = rss()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with open(os.devnull, "w") as quiet:
        report = asyncio.run(run_loadtest(options, cards, ramp=0.0, stream=quiet, baseline=False))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    done.set()
    watcher.join()
    peak[0] = max(peak[0], rss())
    executed = report["steps"].get("code", {}).get("count", 0)
    return {
        "mode": mode,
        "users": users,
        "succeeded": report["succeeded"],
        "executed": executed,
        "cpu": cpu,
        "wall": wall,
        "peak_over_start": peak[0] - before,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--cells", type=int, default=30, help="code cells in the notebook")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--drive", choices=("notebook", "snippet"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        stand_in(args.serve)
        return
    if args.drive:
        print(json.dumps(drive(args.url, args.drive, args.users, args.cells)))
        return

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_status(f"{url}/ping") == 200, 20, message="the stand-in")
        results = {}
        for mode in ("snippet", "notebook"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--drive",
                    mode,
                    "--url",
                    url,
                    "--users",
                    str(args.users),
                    "--cells",
                    str(args.cells),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait(10)

    n = args.users
    snip, nb = results["snippet"], results["notebook"]
    print(f"{n} participants from one driver process against a stand-in that answers at once\n")
    print(f"{'':26} {'ok':>5} {'executed':>9} {'CPU s':>7} {'wall s':>7} {'ms/cell':>8} {'MB/user':>8}")
    for name, r in (("fixed snippet (print 6*7)", snip), (f"notebook ({args.cells} cells)", nb)):
        per_cell = 1000 * r["cpu"] / r["executed"] if r["executed"] else float("nan")
        per_user = r["peak_over_start"] / n / 1e6
        print(
            f"{name:26} {r['succeeded']:>5} {r['executed']:>9} {r['cpu']:7.2f} {r['wall']:7.2f} "
            f"{per_cell:8.3f} {per_user:8.3f}"
        )
    nb_cell = 1000 * nb["cpu"] / nb["executed"] if nb["executed"] else float("inf")
    # the notebook's journey minus the snippet's: what running the cells (and sampling) adds
    extra = 1000 * (nb["cpu"] - snip["cpu"]) / max(1, nb["executed"] - snip["executed"])
    nb_mem = nb["peak_over_start"] / n / 1e6
    met = nb["succeeded"] == n and nb_cell <= 2.0 and nb_mem <= 5.0
    print()
    print(
        f"driver CPU per executed cell: {nb_cell:.3f} ms all included, {extra:.3f} ms for the cells "
        f"beyond the journey; memory per participant {nb_mem:.2f} MB "
        f"(goal <= 2 ms, <= 5 MB: {'met' if met else 'NOT met'})"
    )
    ratio = nb_cell / (1000 * snip["cpu"] / snip["executed"])
    print(f"ratio notebook/snippet driver CPU per execution: {ratio:.3f}")


if __name__ == "__main__":
    main()
