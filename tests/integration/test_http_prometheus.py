"""A real Prometheus server (Debian's /usr/bin/prometheus) scrapes /metrics and answers a query about a bot."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from harness import bot, free_port, toml_argv, wait_until
from http_helpers import HTTP, base_url

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs prometheus")]


def query(prom: str, expr: str) -> list[dict]:
    try:
        r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5)
    except httpx.TransportError:
        return []
    return r.json()["data"]["result"] if r.status_code == 200 else []


def test_prometheus_scrapes_and_reads_a_series_back(master, tmp_path) -> None:
    m = master(f'''
        [supervisor]
        state_dir = "state"
        {HTTP}
        [bots.steady]
        cmd = {toml_argv(bot("sleeper"))}
        start_grace = "200ms"
    ''')
    target = base_url(m).removeprefix("http://")
    m.wait_transition("steady:0", "RUNNING")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: supctl\n"
                      f"    static_configs:\n      - targets: ['{target}']\n")
    port = free_port()
    prom = f"http://127.0.0.1:{port}"
    with open(tmp_path / "prometheus.out", "wb") as out:
        proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        up = wait_until(lambda: [s for s in query(prom, 'up{job="supctl"}') if s["value"][1] == "1"], 90,
                        "Prometheus to scrape the master")
        assert up
        series = wait_until(lambda: query(prom, 'supctl_instance_up{bot="steady"}'), 30, "the bot's series")
        # the target label `instance` (host:port) wins; ours is kept as exported_instance (docs/http.md says so)
        assert series[0]["metric"]["exported_instance"] == "0" and series[0]["metric"]["instance"] == target
        assert series[0]["value"][1] == "1"
        [state] = query(prom, 'supctl_instance_state{bot="steady",state="RUNNING"}')
        assert state["value"][1] == "1"
    finally:
        proc.terminate()
        proc.wait(30)
