"""Command line: -t configuration check, -V version, usage errors.

Runs the binary directly, without starting a server; the valid configuration
is the same kind the other tests use.
"""

import re
import unittest

from harness import Braced, BracedTestCase, make_config, run_braced


class CommandLineTest(BracedTestCase):

    def test_check_config_accepts_a_valid_file(self):
        b = Braced(make_config({"demo": {"upstream": self.upstream.url("/base")}}))
        code, out, err = b.check_config()
        self.assertEqual(code, 0, err)
        self.assertEqual(out.strip(), f"{b.config_path}: ok")

    def test_check_config_reports_an_unknown_key_with_its_position(self):
        b = Braced('listen: 127.0.0.1:0\n'
                   'admin: "off"\n'
                   'no_such_key: 1\n'
                   'profiles:\n'
                   f'  demo: {{upstream: "{self.upstream.url()}"}}\n')
        code, out, err = b.check_config()
        self.assertEqual(code, 1, out + err)
        self.assertRegex(err, re.compile(rf"^{re.escape(b.config_path)}:3:\d+: ", re.M))

    def test_route_cannot_set_profile_wide_defences(self):
        # The breaker and the retry budget count a whole profile's traffic.
        b = Braced('listen: 127.0.0.1:0\n'
                   'admin: "off"\n'
                   'profiles:\n'
                   '  demo:\n'
                   f'    upstream: "{self.upstream.url()}"\n'
                   '    routes:\n'
                   '      - match: GET /a\n'
                   '        circuit_breaker: {enabled: false}\n'
                   '      - match: GET /b\n'
                   '        retry: {attempts: 2, budget: {ratio: 0.5}}\n'
                   '      - match: GET /c\n'
                   '        retry: {attempts: 2}\n')
        code, out, err = b.check_config()
        self.assertEqual(code, 1, out + err)
        self.assertRegex(err, re.compile(rf"^{re.escape(b.config_path)}:8:\d+: circuit_breaker", re.M))
        self.assertRegex(err, re.compile(rf"^{re.escape(b.config_path)}:10:\d+: retry.budget", re.M))
        self.assertEqual(len(err.strip().splitlines()), 2, err)

    def test_check_config_reports_what_start_up_would_fail_on(self):
        # Each passed -t before and then failed at start.
        b = Braced('listen: [127.0.0.1:7399, "unix:/nonexistent-braced/b.sock", 127.0.0.1:7399]\n'
                   'admin: 127.0.0.1:7399\n'
                   'profiles:\n'
                   '  demo:\n'
                   f'    upstream: "{self.upstream.url()}"\n'
                   '    tls: {ca_file: /nonexistent-braced/ca.pem}\n')
        code, out, err = b.check_config()
        self.assertEqual(code, 1, out + err)
        path = re.escape(b.config_path)
        for line, what in ((1, "the socket directory '/nonexistent-braced' cannot be used"),
                           (1, "'127.0.0.1:7399' is listed twice"),
                           (2, "admin '127.0.0.1:7399' is also an app listener"),
                           (6, "tls.ca_file '/nonexistent-braced/ca.pem' cannot be read")):
            self.assertRegex(err, re.compile(rf"^{path}:{line}:\d+: {re.escape(what)}", re.M))

    def test_unknown_key_names_its_near_miss(self):
        b = Braced(make_config({"demo": {"upstream": self.upstream.url(), "rout_only": True}}))
        code, out, err = b.check_config()
        self.assertEqual(code, 1, out + err)
        self.assertIn("unknown key 'rout_only' in profile 'demo' (did you mean 'routes_only'?)",
                      err)

    def test_version(self):
        code, out, err = run_braced(["-V"])
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"^braced \S+\n?$")

    def test_unknown_option_is_a_usage_error(self):
        code, out, err = run_braced(["--no-such-option"])
        self.assertEqual(code, 2, out + err)


if __name__ == "__main__":
    unittest.main()
