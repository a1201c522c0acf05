"""The deployment rehearsal: the organizer's path, as close to a cluster as this machine allows.

``helm install`` of helm-chart/ (rendered with the real Zero to JupyterHub 4.4.0 subchart) onto
the emulated cluster (tests/harness/kube/, over TLS, with the chart's RBAC enforced); the hub
pod run from its rendered Deployment — z2jh's own, unmodified ``jupyterhub_config.py`` with its
Secrets and ConfigMaps at their real paths and KubeSpawner on its in-cluster configuration —
in an environment with exactly the hub image's packages (``.venv-hub``); the proxy pod from its
Deployment's command; user pods running ``jupyterhub-singleuser`` from the single-user image's
locked environment (``.venv-singleuser``). People sign in with cards through the proxy.

Layout:

* ``test_rehearsal.py`` — what pytest collects: starts one private network, mount and pid
  namespace (``unshare``, as root) with ``nsinit.py`` as its init, and runs the scenarios in
  there with a pytest of their own; then checks that no process and no mount outlived it.
* ``rehearse_workshop.py``, ``rehearse_values.py`` — the scenarios (not collected outside:
  their names do not start with ``test_``), run only inside those namespaces.
* ``install.py`` (release, installation), ``pods.py`` (a Deployment's pod at its real paths),
  ``jobs.py`` (the chart's Jobs, run as the Job controller and a node's kubelet would),
  ``network.py`` (/etc/hosts and Service ports), ``nsinit.py`` (a namespace's first process).
* ``test_images.py`` — the images' install steps and the rehearsal's environments agree;
  ``test_pods.py``, ``test_nsinit.py`` — the pods' parts, without namespaces.

Why a private network namespace: the chart's fixed ports (hub 8081, proxy 8000/8001, the
service's 10101, the API server's 443, Service port 80) and the pods' 127.0.A.B addresses
would otherwise meet whatever else runs on the machine (a demo on 8000, another test run's
emulated pods on 127.0.1.1:8888). In there, every port is free, names resolve through an
/etc/hosts of our own, and the test driver runs inside with everything it talks to.
"""
