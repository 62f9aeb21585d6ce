#!/usr/bin/python3
"""The benchmark's charts stand alone: every target's label is whole and
fits, an axis carries ticks and the unit, the title says which way is
better, and every number of a chart has the same format."""

import os
import re
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chart  # noqa: E402

NS = "{http://www.w3.org/2000/svg}"

TAIL = [("direct", (299.09, 298.99, 300.79)), ("braced", (299.84, 299.55, 301.21)),
        ("braced+hedge-20ms", (23.37, 23.12, 23.77)),
        ("braced+hedge-p95", (12.62, 10.84, 12.84))]
OUTAGE = [("direct", (1.0, 1.0, 1.0)), ("braced", (0.0000232, 0.0, 0.001)),
          ("haproxy", (4.0, 4.0, 4.0)), ("in-app", None),
          ("a rather long target name+variant-p99", (2.5, 2.0, 3.0))]


def parse(svg):
    root = ET.fromstring(svg)
    texts = [(t.get("class"), t) for t in root.iter(NS + "text")]
    return root, texts


class ChartTest(unittest.TestCase):

    def check(self, title, vals, unit, better):
        svg = chart.svg_bars(title, vals, unit, better)
        root, texts = parse(svg)
        width = float(root.get("width"))
        labels = {t.text: t for c, t in texts if c == "label"}
        for name, _ in vals:
            # Whole, and starting inside the picture with the estimated width.
            self.assertIn(name, labels)
            x = float(labels[name].get("x"))
            self.assertEqual(labels[name].get("text-anchor"), "end")
            self.assertGreaterEqual(x - chart.text_width(name), 0, name)
        everything = " ".join(t.text or "" for _, t in texts)
        self.assertIn(title, everything)
        self.assertIn(f"{better} is better", everything)
        # An axis line, at least three ticks from 0, and its title with the unit.
        self.assertTrue(any(ln.get("class") == "axis" for ln in root.iter(NS + "line")))
        ticks = [t.text for c, t in texts if c == "tick"]
        self.assertGreaterEqual(len(ticks), 3)
        self.assertEqual(ticks[0], "0")
        axis = [t.text for c, t in texts if c == "axis-title"]
        self.assertEqual(len(axis), 1)
        # One format: the same decimals everywhere, no exponent.
        values = [t.text for c, t in texts if c == "value"]
        self.assertEqual(len(values), sum(1 for _, a in vals if a))
        decimals = {len(v.split(".")[1]) if "." in v else 0 for v in values}
        self.assertEqual(len(decimals), 1, values)
        for v in values + ticks:
            self.assertRegex(v, r"^-?[\d,]+(\.\d+)?$")
        # Nothing drawn past the right edge: values fit their estimated width.
        for c, t in texts:
            if c == "value":
                self.assertLessEqual(float(t.get("x")) + chart.text_width(t.text), width)
        return svg, axis[0], values

    def test_latency_chart(self):
        svg, axis, values = self.check("tail-2: p99 latency", TAIL, "ms", "lower")
        self.assertIn("braced+hedge-20ms", svg)
        self.assertTrue(axis.endswith("(ms)"), axis)
        self.assertEqual(values, ["299", "300", "23", "13"])

    def test_small_and_missing_values(self):
        _, _, values = self.check("503-100: upstream requests per app request", OUTAGE, "",
                                  "lower")
        self.assertEqual(values, ["1.00", "0.00", "4.00", "2.50"])
        self.assertNotRegex(" ".join(values), r"e-")

    def test_time_unit_follows_the_values(self):
        vals = [("direct", (0.045, 0.038, 0.193)), ("braced", (0.049, 0.045, 0.235))]
        _, axis, values = self.check("503-100: p99 latency", vals, "ms", "lower")
        self.assertTrue(axis.endswith("(µs)"), axis)
        self.assertEqual(values, ["45", "49"])

    def test_higher_is_better(self):
        self.check("clean: requests per second",
                   [("direct", (101776, 100442, 104710)), ("braced", (30239, 21280, 30389))],
                   "", "higher")

    def test_labels_are_escaped(self):
        svg = chart.svg_bars("x: <y> & z", [("a<b", (1, 1, 1))], "", "lower")
        ET.fromstring(svg)
        self.assertIn("a&lt;b", svg)

    def test_committed_charts_state_their_direction(self):
        bench = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                             "docs", "bench")
        for f in sorted(os.listdir(bench)):
            if f.endswith(".svg"):
                with self.subTest(chart=f), open(os.path.join(bench, f)) as fh:
                    text = fh.read()
                    ET.fromstring(text)
                    self.assertRegex(text, r"(lower|higher) is better")
                    self.assertIn('class="axis"', text)
                    self.assertNotRegex(text, r">[\d.]+e-\d+<")


if __name__ == "__main__":
    unittest.main()
