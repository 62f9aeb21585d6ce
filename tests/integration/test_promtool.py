"""/metrics as Prometheus reads it: `promtool check metrics` (Debian's
prometheus package) finds no problem in a scrape taken after traffic of
every kind: answers, retries, refusals, schema violations."""

import os
import shutil
import subprocess
import unittest

from harness import REPO, Braced, BracedTestCase, fault, request

SCHEMA_ROUTE = {"match": "GET /v1/weather",
                "response": {"mode": "report",
                             "body": {"type": "object", "required": ["temperature"]}}}


class PromtoolTest(BracedTestCase):

    def test_scrape_after_traffic_passes_promtool(self):
        promtool = shutil.which("promtool") or shutil.which(
            "promtool", path=os.path.join(REPO, "build-tools", "usr", "bin"))
        self.assertIsNotNone(promtool, "promtool not found: scripts/test unpacks it into build-tools/")
        cfg = self.config({"routes": [SCHEMA_ROUTE]}, admin="127.0.0.1:0",
                          defaults={"retry": {"attempts": 2, "backoff": {"base": "10ms"}}})
        with Braced(cfg) as b:
            self.assertEqual(b.get("/demo/ok").status, 200)
            self.upstream.script([{"status": 503}])
            self.assertEqual(b.get("/demo/retried").status, 200)
            b.get("/demo/fails", fault(status=500))
            b.get("/demo/v1/weather", fault(body="{}", headers={"Content-Type": "application/json"}))
            b.get("/demo/a/../b")
            b.get("/nosuch/x")
            scrape = request(b.admin_port, "GET", "/metrics", timeout=10)
        self.assertEqual(scrape.status, 200, scrape)
        self.assertIn(b"braced_retries_total", scrape.body)
        self.assertIn(b"braced_schema_violations_total", scrape.body)
        out = subprocess.run([promtool, "check", "metrics"], input=scrape.body,
                             capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0,
                         (out.stdout + out.stderr).decode(errors="replace")[-3000:])


if __name__ == "__main__":
    unittest.main()
