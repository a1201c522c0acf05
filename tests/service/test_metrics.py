from jupyterhub_workshop.service.metrics import WorkshopMetrics


def test_metrics_continue_from_the_store_and_price_node_hours():
    metrics = WorkshopMetrics(price_per_node_hour=0.384)
    metrics.load({"idle": 3, "night": 12}, [600.0, 7200.0], node_hours=10.0)
    metrics.running_servers.set(42)
    text = metrics.render().decode()
    assert 'workshop_culls_total{reason="night"} 12.0' in text
    assert 'workshop_culls_total{reason="max-age"} 0.0' in text
    assert "workshop_running_servers 42.0" in text
    assert "workshop_session_duration_seconds_count 2.0" in text
    assert "workshop_node_hours 10.0" in text and "workshop_cost 3.84" in text
