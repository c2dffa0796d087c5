def test_healthz_reports_database_reachable(client, backend):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"]["status"] == "ok"
