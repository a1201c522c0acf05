import pytest

from jupyterhub_workshop.rehearsal.plan.catalogue import NodeType
from jupyterhub_workshop.rehearsal.plan.overheads import (
    OverheadSettings,
    default_system_cpu,
    default_system_memory,
)
from jupyterhub_workshop.rehearsal.plan.quantities import GIB, MIB


def test_default_system_reserve():
    # GKE's CPU tiers: 6 % of core 1, 1 % of core 2, 0.5 % of cores 3-4, 0.25 % above
    assert default_system_cpu(1) == pytest.approx(0.06)
    assert default_system_cpu(8) == pytest.approx(0.06 + 0.01 + 0.01 + 0.01)
    assert default_system_memory(32 * GIB) == pytest.approx(0.06 * 32 * GIB + 100 * MIB, abs=1)


def test_settings_give_each_node_its_overheads():
    small, big = NodeType("s", 2, 8 * GIB), NodeType("b", 32, 128 * GIB)
    defaults = OverheadSettings()
    assert defaults.for_node(big).system_memory > defaults.for_node(small).system_memory  # follows the size
    assert defaults.for_node(small).memory == default_system_memory(8 * GIB) + 512 * MIB + 128 * MIB
    fixed = OverheadSettings(system_cpu=0.5, system_memory=GIB, hub_memory=0)
    assert fixed.for_node(small).system_memory == fixed.for_node(big).system_memory == GIB
    assert fixed.for_node(big).cpu == pytest.approx(0.5 + 0.2)
