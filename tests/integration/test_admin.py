"""The admin API (SPEC 6): health, readiness while draining, Prometheus
metrics with the names users scrape, per-profile status, and the effective
configuration with secrets redacted, every key of the file shown, and the
listeners actually open."""

import json
import os
import signal
import unittest

import yaml

from harness import Background, Braced, BracedTestCase, closed_port, fault, request, wait_until

# Keys of `defaults` that a profile or a route may carry beside its own.
POLICY_KEYS = ("timeouts", "retry", "circuit_breaker", "rate_limit_cooldown", "idempotency",
               "correlation", "pool", "upstream_errors", "tracing", "schema_formats", "hedge",
               "concurrency")

# Every key braced.yaml(5) documents that the loader takes, with a value
# other than its default where it has one.
FULL_CONFIG = """\
listen: [127.0.0.1:0]
admin: 127.0.0.1:0
shutdown_grace: 3s
log: {format: json, level: info, access: false}
limits:
  max_request_body: 2MiB
  max_response_body: 4MiB
  max_header_size: 8KiB
  max_validated_body: 1MiB
  max_connections: 100
  max_inflight: 50
  header_timeout: 5s
  body_timeout: 6s
  idle_timeout: 7s
fleet:
  redis: redis://127.0.0.1:REDIS_PORT/2
  username: braced
  password: "${BRACED_IT_FLEET_PW}"
  secret: "0123456789abcdef0123"
  key_prefix: "it:"
  share: [cooldown, breaker]
  timeout: 40ms
  sync_interval: 200ms
defaults:
  timeouts: {connect: 1s, read: 2s, write: 3s, pool: 4s, attempt: 5s, total: 9s}
  retry:
    attempts: 3
    statuses: [503]
    transport: [connect]
    methods: [GET]
    unsafe: never
    backoff: {base: 100ms, max: 2s, jitter: equal}
    retry_after: {honor: false, max: 10s}
    budget: {ratio: 0.5, min_per_second: 5, window: 5s}
    on_schema_violation: true
  circuit_breaker:
    enabled: false
    window: 20s
    min_requests: 10
    failure_ratio: 0.25
    open_for: 3s
    half_open_probes: 2
  rate_limit_cooldown: false
  idempotency: {header: X-Idem, methods: [POST]}
  correlation: {header: X-Corr}
  pool: {max_connections: 10, max_idle: 5}
  upstream_errors: envelope
  tracing: {traceparent: generate}
  schema_formats: annotate
  hedge: {delay: 150ms, max: 2}
  concurrency: {adaptive: true, min: 2, max: 64}
profiles:
  full:
    upstream: UPSTREAM
    headers: {X-Plain: visible, X-Key: "${BRACED_IT_KEY}"}
    tls: {verify: false, ca_file: /etc/ssl/certs/ca-certificates.crt}
    routes_only: true
    match_case: insensitive
    timeouts: {total: 8s}
    retry: {attempts: 2}
    circuit_breaker: {enabled: true}
    rate_limit_cooldown: true
    idempotency: {header: X-Idem-2}
    correlation: {header: X-Corr-2}
    pool: {max_idle: 4}
    upstream_errors: passthrough
    tracing: {traceparent: off}
    schema_formats: assert
    hedge: {delay: p90}
    concurrency: {adaptive: false}
    routes:
      - match: GET /items/{id}
        timeouts: {read: 1500ms}
        retry: {attempts: 1}
        rate_limit_cooldown: false
        idempotency: {methods: [PUT]}
        correlation: {header: X-Corr-3}
        pool: {max_connections: 3}
        upstream_errors: envelope
        tracing: {traceparent: propagate}
        schema_formats: annotate
        hedge: {delay: 0}
        concurrency: {max: 32}
        request:
          mode: report
          query: {type: object}
        response:
          mode: enforce
          statuses: [200]
          body: {type: object}
"""


def shown(doc, path):
    """The value /config shows for the file's key path (durations carry _ms;
    hedge.delay is delay_ms, or delay for pNN); raises KeyError if absent."""
    node = doc
    for key in path:
        if isinstance(node, list):
            node = node[key]
        elif key in node:
            node = node[key]
        elif f"{key}_ms" in node:
            node = node[f"{key}_ms"]
        else:
            raise KeyError("/".join(map(str, path)))
    return node


def file_keys(node, path=()):
    """Every key path of the file to a value; schema documents are values."""
    if isinstance(node, dict) and node and path[-1:] not in (("query",), ("body",)):
        for key, value in node.items():
            yield from file_keys(value, path + (key,))
    elif isinstance(node, list) and node and isinstance(node[0], dict):
        for i, value in enumerate(node):
            yield from file_keys(value, path + (i,))
    else:
        yield path


def config_path(path):
    """Where /config shows a file key: a profile's and a route's policy keys
    under their "policy"."""
    if path[0] == "profiles" and len(path) > 2 and path[2] in POLICY_KEYS:
        return path[:2] + ("policy",) + path[2:]
    if path[0] == "profiles" and len(path) > 4 and path[2] == "routes" and path[4] in POLICY_KEYS:
        return path[:4] + ("policy",) + path[4:]
    return path


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

    def test_config_shows_every_key_of_a_full_configuration(self):
        text = FULL_CONFIG.replace("REDIS_PORT", str(closed_port())).replace(
            "UPSTREAM", self.upstream.url("/base"))
        secrets = {"BRACED_IT_FLEET_PW": "fleet-pw-s3cr3t", "BRACED_IT_KEY": "key-s3cr3t"}
        with Braced(text, env=secrets) as b:
            resp = request(b.admin_port, "GET", "/config")
        self.assertEqual(resp.status, 200, resp)
        for value in secrets.values():
            self.assertNotIn(value.encode(), resp.body)
        self.assertNotIn(b"0123456789abcdef0123", resp.body)
        doc = resp.json()
        keys = list(file_keys(yaml.safe_load(text)))
        self.assertGreater(len(keys), 90)
        for path in keys:
            with self.subTest(key=".".join(map(str, path))):
                if path[-2:] == ("hedge", "delay"):
                    parent = shown(doc, config_path(path)[:-1])
                    self.assertTrue("delay_ms" in parent or "delay" in parent, parent)
                    continue
                shown(doc, config_path(path))
        full = doc["profiles"]["full"]
        self.assertEqual(doc["limits"]["header_timeout_ms"], 5000)
        self.assertEqual(doc["limits"]["body_timeout_ms"], 6000)
        self.assertEqual(doc["limits"]["idle_timeout_ms"], 7000)
        self.assertEqual(doc["fleet"]["password"], "<redacted>")
        self.assertEqual(doc["fleet"]["secret"], "<redacted>")
        self.assertEqual(full["headers"], {"X-Plain": "visible", "X-Key": "<redacted>"})
        self.assertEqual(full["policy"]["hedge"]["delay"], "p90")
        route = full["routes"][0]
        self.assertEqual(route["policy"]["timeouts"]["read_ms"], 1500)
        self.assertEqual(route["request"], {"mode": "report", "query": {"type": "object"},
                                            "body": None})
        self.assertEqual(route["response"], {"mode": "enforce", "statuses": [200],
                                             "body": {"type": "object"}})

    def test_config_shows_the_listeners_open(self):
        cfg = self.config(admin="127.0.0.1:0")
        with Braced(cfg) as b:
            admin = b.admin_port
            doc = request(admin, "GET", "/config").json()
            self.assertEqual(doc["listen"], [f"127.0.0.1:{b.port}"])
            self.assertEqual(doc["admin"], f"127.0.0.1:{admin}")
            self.assertIs(doc["socket_activated"], False)
            self.assertNotIn("restart_pending", doc)
            # A reload does not rebind: /config still shows what is open,
            # and what the file says under restart_pending.
            b.reload(self.config(listen=["127.0.0.1:0", "127.0.0.1:0"], admin="off"))
            after = request(admin, "GET", "/config").json()
            self.assertEqual(b.get("/demo/x").status, 200)
        self.assertEqual(after["listen"], [f"127.0.0.1:{b.port}"])
        self.assertEqual(after["admin"], f"127.0.0.1:{admin}")
        self.assertEqual(after["restart_pending"],
                         {"listen": ["127.0.0.1:0", "127.0.0.1:0"], "admin": "off"})


if __name__ == "__main__":
    unittest.main()
