# jupyterhub-workshop: hub configuration from the Helm chart's `workshop:` settings.
#
# Zero to JupyterHub's jupyterhub_config.py exec()s this file (mounted into
# /usr/local/etc/jupyterhub/jupyterhub_config.d/) in its own globals, after its chart defaults,
# services, roles and hub.config, and before hub.extraConfig (which can still override us).
# The hub sees only the jupyterhub subchart's values; the chart delivers `workshop:` to it as
# `custom.workshop` through the Secret named by jupyterhub.hub.existingSecret, with `wiring`:
# the names and paths it resolved from `jupyterhub:`.
#
# Everything happens inside one function, so no names leak into z2jh's globals.


def _configure_workshop(c):
    import os
    import re
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    import z2jh
    from jupyterhub_workshop.hubconfig.services import night_warning, workshop_roles, workshop_service

    service_name = "workshop"

    class WorkshopConfigError(ValueError):
        pass

    ws = z2jh.get_config("custom.workshop")
    if not isinstance(ws, dict) or not isinstance(ws.get("wiring"), dict):
        raise WorkshopConfigError(
            "custom.workshop (with its wiring) is missing: the hub did not receive the chart's "
            "workshop settings. Is jupyterhub.hub.existingSecret the Secret the jupyterhub-workshop "
            "chart writes (default workshop-hub-settings)?"
        )
    wiring = ws["wiring"]

    def section(*keys):
        value = ws
        for key in keys:
            value = (value or {}).get(key)
        return value or {}

    def not_none(mapping):
        return {k: v for k, v in mapping.items() if v is not None and v != ""}

    # --- who may log in: the accounts file -----------------------------------------------
    c.JupyterHub.authenticator_class = "workshop"
    c.WorkshopAuthenticator.accounts_file = wiring["accountsFile"]
    if ws.get("title"):
        c.WorkshopAuthenticator.workshop_title = ws["title"]
    if ws.get("loginHint"):
        c.WorkshopAuthenticator.login_hint = ws["loginHint"]

    # --- the workshop spawner -------------------------------------------------------------
    c.JupyterHub.spawner_class = "workshop"
    spawner = c.WorkshopKubeSpawner

    def home_storage(settings):
        mode = settings.get("mode")
        out = {"mode": mode} if mode else {}
        if settings.get("storageClass"):
            out["storage_class"] = settings["storageClass"]
        if settings.get("capacity") and mode != "static" and mode != "none":
            out["capacity"] = settings["capacity"]
        if settings.get("existingClaim") and mode != "dynamic" and mode != "none":
            out["claim"] = settings["existingClaim"]
        if settings.get("subPath") and mode != "dynamic" and mode != "none":
            out["sub_path"] = settings["subPath"]
        return out

    storage = section("homeStorage")
    spawner.home_storage = home_storage(storage)
    spawner.home_storage_for_groups = {
        group: home_storage(settings or {}) for group, settings in (storage.get("forGroups") or {}).items()
    }
    if storage.get("mountPath"):
        spawner.home_mount_path = storage["mountPath"]
    if storage.get("claimBindTimeout") is not None:
        spawner.home_claim_bind_timeout = float(storage["claimBindTimeout"])

    shared = section("sharedData")
    shared_data = {}
    nfs = shared.get("nfs") or {}
    if nfs.get("server"):
        shared_data = {"nfs_server": nfs["server"], "nfs_path": nfs.get("path") or "/"}
    elif shared.get("existingClaim"):
        shared_data = {"claim": shared["existingClaim"]}
    if shared_data:
        shared_data.update(not_none({"mount_path": shared.get("mountPath"),
                                     "writable_mount_path": shared.get("writableMountPath")}))
    spawner.shared_data = shared_data
    if shared.get("writerGroups") is not None:
        spawner.shared_writer_groups = list(shared["writerGroups"])

    spawner.readme_config_map = wiring.get("readmeConfigMap") or ""
    spawner.readme_config_map_key = wiring.get("readmeKey") or "README.md"

    culling = section("culling")
    if culling.get("kernelIdleTimeout") is not None:
        spawner.kernel_idle_timeout = int(culling["kernelIdleTimeout"])

    def resources(settings):
        cpu, memory = settings.get("cpu") or {}, settings.get("memory") or {}
        return not_none({
            "cpu_guarantee": None if cpu.get("guarantee") is None else float(cpu["guarantee"]),
            "cpu_limit": None if cpu.get("limit") is None else float(cpu["limit"]),
            "mem_guarantee": memory.get("guarantee"),
            "mem_limit": memory.get("limit"),
        })

    # on KubeSpawner (z2jh sets singleuser.cpu/memory there): ours replace them when given
    for trait, value in resources(section("resources")).items():
        setattr(c.KubeSpawner, trait, value)

    if ws.get("profiles"):
        c.KubeSpawner.profile_list = list(ws["profiles"])

    fast = section("highPerformance")
    if fast.get("enabled"):
        spawner.high_performance = not_none({
            "node_selector": fast.get("nodeSelector") or None,
            "tolerations": fast.get("tolerations") or None,
            "gpus": int(fast.get("gpus") or 0) or None,
            **resources(fast),
        })
        spawner.high_performance_groups = list(fast.get("groups") or [])

    # --- the workshop service: culling, usage records, admin page, metrics ---------------
    night = culling.get("night") or {}
    start, end, zone = night.get("start") or "", night.get("end") or "", night.get("timeZone") or "UTC"
    clock = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    if bool(start) != bool(end):
        raise WorkshopConfigError("workshop.culling.night needs both start and end (HH:MM), or neither")
    if start and (not clock.match(start) or not clock.match(end) or start == end):
        raise WorkshopConfigError(f"workshop.culling.night: {start!r}-{end!r} is not a window of two different HH:MM times")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise WorkshopConfigError(
            f"workshop.culling.night.timeZone {zone!r} is not an IANA time zone (e.g. America/Denver)"
        ) from None

    def list_option(trait, items):
        # traitlets' command line: one --Class.trait=item per item; an empty list as one empty
        # name, which no hub group has
        return [f"--WorkshopService.{trait}={item}" for item in (list(items or []) or [""])]

    port = int(wiring["servicePort"])
    service = section("service")
    args = [
        # listen on every interface of the hub pod: the proxy comes through the hub Service
        f"--WorkshopService.service_url=http://0.0.0.0:{port}",
        f"--timeout={int(culling.get('idleTimeout') or 0)}",
        f"--max-age={int(culling.get('maxAge') or 0)}",
        *list_option("exempt_groups", culling.get("exemptGroups")),
        *list_option("staff_groups", service.get("staffGroups")),
        f"--WorkshopService.users_per_node={int(service.get('usersPerNode') or 0)}",
        f"--WorkshopService.price_per_node_hour={float(service.get('pricePerNodeHour') or 0)}",
        f"--WorkshopService.currency={service.get('currency') or 'USD'}",
    ]
    if start:
        args += [f"--night-start={start}", f"--night-end={end}", f"--timezone={zone}"]
    if culling.get("dryRun"):
        args.append("--dry-run")

    environment = {}
    if wiring.get("databaseFromSecret"):
        # a managed service does not inherit the hub's environment (nor hub.extraEnv)
        url = os.environ.get("WORKSHOP_DB_URL", "")
        if not url:
            raise WorkshopConfigError(
                "workshop.service.database is set but $WORKSHOP_DB_URL is empty in the hub: does the "
                f"Secret {wiring.get('databaseSecret')!r} exist, with the URL under the key "
                "jupyterhub.hub.extraEnv.WORKSHOP_DB_URL names?"
            )
        environment["WORKSHOP_DB_URL"] = url
    else:
        args.append(f"--db-url={wiring['sqliteUrl']}")

    try:
        hub_host = z2jh.get_name("hub")  # the hub Service, through which the proxy reaches us
    except Exception:
        hub_host = "hub"
    entry = workshop_service(name=service_name, port=port, args=args, environment=environment, host=hub_host)
    services = list(c.JupyterHub.services) if "services" in c.JupyterHub else []
    for existing in services:
        if existing.get("name") == service_name:
            # z2jh's hub.services.workshop entry: keep its api_token (kept in Secret `hub`)
            existing.update(entry)
            break
    else:
        services.append(entry)
    c.JupyterHub.services = services

    roles = list(c.JupyterHub.load_roles) if "load_roles" in c.JupyterHub else []
    for role in workshop_roles(service_name):
        same = next((r for r in roles if r.get("name") == role["name"]), None)
        if same is None:
            roles.append(role)
        else:  # e.g. a `user` role from hub.loadRoles: add our scopes to it
            for key in ("scopes", "services"):
                merged = list(same.get(key) or [])
                merged += [item for item in role.get(key, []) if item not in merged]
                if merged:
                    same[key] = merged
    c.JupyterHub.load_roles = roles

    if start:
        base_url = z2jh.get_config("hub.baseUrl", "/") or "/"
        template_vars = dict(c.JupyterHub.template_vars) if "template_vars" in c.JupyterHub else {}
        template_vars.setdefault("announcement", night_warning(
            start, end, zone, service_path=f"{base_url.rstrip('/')}/services/{service_name}/"))
        c.JupyterHub.template_vars = template_vars


_configure_workshop(c)  # noqa: F821 -- `c` is the config object of z2jh's jupyterhub_config.py
del _configure_workshop
