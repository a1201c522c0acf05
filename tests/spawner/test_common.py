from jupyterhub_workshop.spawner.common import in_any, kernel_culling_args


def test_kernel_culling_args():
    assert kernel_culling_args(0, 300, False) == []
    assert "--MappingKernelManager.cull_idle_timeout=3600" in kernel_culling_args(3600, 300, False)
    assert "--MappingKernelManager.cull_connected=False" in kernel_culling_args(3600, 300, False)


def test_in_any():
    assert in_any(["participants", "instructors"], ["instructors"])
    assert not in_any(["participants"], ["instructors", "tas"])
    assert not in_any([], [])
