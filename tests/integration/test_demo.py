"""The demo setup: a profile in front of the test upstream run with --demo.

This is the pairing scripts/run shows to a new user, so it must answer the
weather example with all four fields.
"""

import unittest

from harness import Braced, BracedTestCase


class DemoTest(BracedTestCase):

    demo_upstream = True

    def test_weather_through_braced(self):
        with Braced(self.config(base="")) as b:
            resp = b.get("/demo/v1/weather?city=Paris")
        self.assertEqual(resp.status, 200, resp)
        doc = resp.json()
        self.assertEqual(doc["city"], "Paris")
        self.assertIsInstance(doc["temperature"], float)
        self.assertIsInstance(doc["condition"], str)
        self.assertIsInstance(doc["source_latency_ms"], int)
        self.assertGreaterEqual(doc["source_latency_ms"], 0)


if __name__ == "__main__":
    unittest.main()
