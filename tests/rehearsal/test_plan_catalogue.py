from datetime import datetime

import pytest

from jupyterhub_workshop.rehearsal.plan.catalogue import NodeType, load_catalogue
from jupyterhub_workshop.rehearsal.plan.errors import PlanError
from jupyterhub_workshop.rehearsal.plan.quantities import GIB


def test_catalogue_has_the_families_and_a_price_date():
    cat = load_catalogue()
    assert cat.prices_read and datetime.fromisoformat(cat.prices_read)
    m5 = cat.nodes["m5.2xlarge"]
    assert (m5.cpu, m5.memory, m5.currency) == (8, 32 * GIB, "USD")
    providers = {n.provider for n in cat.nodes.values()}
    assert providers == {"aws", "gcp", "jetstream2"}
    names = set(cat.nodes)
    assert {"m5.xlarge", "m6i.2xlarge", "n2-standard-8", "n2-highmem-8", "m3.medium", "m3.xl"} <= names
    assert all(
        n.price is not None and n.price > 0 and n.source.startswith("https://") for n in cat.nodes.values()
    )


def test_unknown_node_names_get_suggestions():
    with pytest.raises(PlanError, match="did you mean m5.2xlarge"):
        load_catalogue().get("m5.2xlage")


def test_families_group_sizes_of_one_kind():
    assert NodeType("m5.2xlarge", 8, 32 * GIB).family == "m5"
    assert NodeType("n2-standard-8", 8, 32 * GIB).family == "n2-standard"


def test_bad_entries_and_duplicates_name_the_file(tmp_path):
    bad = tmp_path / "nodes.yaml"
    bad.write_text("nodes:\n  - {name: a, cpu: 2}\n")
    with pytest.raises(ValueError, match=r"nodes.yaml: node entry 1: 'memory'"):
        load_catalogue(bad)
    bad.write_text("nodes:\n  - {name: a, cpu: 2, memory: 8G}\n  - {name: a, cpu: 4, memory: 16G}\n")
    with pytest.raises(ValueError, match="node a listed twice"):
        load_catalogue(bad)
