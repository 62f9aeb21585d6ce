"""The admin API (SPEC 6): health, readiness while draining, Prometheus
metrics with the names users scrape, per-profile status, and the effective
configuration with secrets redacted."""

import json
import os
import signal
import unittest

from harness import Background, Braced, BracedTestCase, fault, request, wait_until


class AdminTest(BracedTestCase):
    def admin_config(self, **profile_extra):
        return self.config(profile_extra or None, admin="127.0.0.1:0")

    def test_health_and_readiness(self):
        with Braced(self.admin_config()) as b:
            health = request(b.admin_port, "GET", "/healthz")
            ready = request(b.admin_port, "GET", "/readyz")
            missing = request(b.admin_port, "GET", "/nope")
        self.assertEqual(health.status, 200, health)
        self.assertEqual(ready.status, 200, ready)
        self.assertEqual(missing.status, 404, missing)

    def test_readyz_is_503_while_draining(self):
        cfg = self.config(admin="127.0.0.1:0", shutdown_grace="10s")
        with Braced(cfg) as b:
            admin = b.admin_port
            slow = Background(b.get, "/demo/slow", fault(delay_ms=1500))
            self.assertTrue(wait_until(lambda: self.upstream.stats()["requests"] >= 1, timeout=3))
            os.kill(b.proc.pid, signal.SIGTERM)
            draining = wait_until(lambda: request(admin, "GET", "/readyz").status == 503,
                                  timeout=1.0)
            health = request(admin, "GET", "/healthz")
            self.assertEqual(slow.result(timeout=10).status, 200)
        self.assertTrue(draining, "/readyz never answered 503 while draining")
        self.assertEqual(health.status, 200)

    def test_metrics_count_requests_attempts_and_errors(self):
        with Braced(self.admin_config()) as b:
            self.assertEqual(b.get("/demo/a").status, 200)
            self.assertEqual(b.get("/demo/b", fault(status=404)).status, 404)
            self.assertEqual(b.get("/other/x").status, 404)
            text = request(b.admin_port, "GET", "/metrics").body.decode()
        self.assertIn('braced_requests_total{profile="demo",code="ok"} 1', text)
        self.assertIn('braced_requests_total{profile="demo",code="upstream_status"} 1', text)
        self.assertIn('braced_upstream_attempts_total{profile="demo",outcome="ok"} 1', text)
        self.assertIn('braced_upstream_attempts_total{profile="demo",outcome="client_error"} 1',
                      text)
        self.assertIn('braced_request_duration_seconds_count{profile="demo"} 2', text)
        for name in ("braced_retries_total", "braced_retries_suppressed_total",
                     "braced_circuit_state", "braced_inflight_requests",
                     "braced_config_reloads_total", "braced_schema_violations_total"):
            self.assertIn(f"# TYPE {name} ", text)
        self.assertIn('braced_circuit_state{profile="demo"} 0', text)

    def test_status_reports_each_profile(self):
        with Braced(self.admin_config()) as b:
            b.get("/demo/a")
            doc = json.loads(request(b.admin_port, "GET", "/status").body)
        demo = doc["profiles"]["demo"]
        self.assertEqual(demo["breaker"]["state"], "closed")
        self.assertEqual(demo["budget"]["requests"], 1)
        self.assertEqual(demo["requests_ok"], 1)
        self.assertEqual(doc["inflight"], 0)

    def test_config_redacts_secrets(self):
        cfg = self.config({"headers": {"Authorization": "Bearer ${BRACED_ADMIN_SECRET}",
                                       "X-Plain": "visible"}},
                          admin="127.0.0.1:0")
        b = Braced(cfg, env={"BRACED_ADMIN_SECRET": "s3cr3t-value"})
        with b:
            resp = request(b.admin_port, "GET", "/config")
        self.assertEqual(resp.status, 200, resp)
        self.assertNotIn(b"s3cr3t-value", resp.body)
        doc = json.loads(resp.body)
        headers = doc["profiles"]["demo"]["headers"]
        self.assertEqual(headers["Authorization"], "<redacted>")
        self.assertEqual(headers["X-Plain"], "visible")
        self.assertEqual(doc["profiles"]["demo"]["policy"]["retry"]["attempts"], 1)


if __name__ == "__main__":
    unittest.main()
