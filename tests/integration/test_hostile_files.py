"""Hostile files: a schema `$ref`, a `${file:}` secret or the configuration
itself naming a FIFO (or anything but a regular file). Reading one must
never block a load: `braced -t` answers at once with the error, and a
reload keeps the old configuration while the app is served throughout."""

import os
import time

from harness import Braced, BracedTestCase, make_config, run_braced

CHECK_TIMEOUT = 5       # seconds `braced -t` may take; a blocked read never ends

REF_ROUTE = [{"match": "GET /v1/weather",
              "request": {"query": {"type": "object",
                                    "properties": {"city": {"$ref": "common.json#/definitions/city"}}}}}]


class FilesThatBlock(BracedTestCase):
    def braced_with_fifo(self, config, fifo_name):
        b = Braced(config)
        b._write_files()
        os.mkfifo(os.path.join(b.dir, fifo_name))
        return b

    def check_refused(self, b, words):
        start = time.monotonic()
        code, out, err = run_braced(["-t", "-c", b.config_path], timeout=CHECK_TIMEOUT)
        self.assertLess(time.monotonic() - start, CHECK_TIMEOUT)
        self.assertEqual(code, 1, out + err)
        self.assertRegex(err, rf"^{b.config_path}:\d+:\d+: .*{words}", err)

    def check_fifo(self, profile_extra, fifo_name, words):
        b = self.braced_with_fifo(self.config(profile_extra), fifo_name)
        try:
            self.check_refused(b, words)
        finally:
            b._cleanup()

    def test_schema_ref_naming_a_fifo_is_refused_at_once(self):
        self.check_fifo({"routes": REF_ROUTE}, "common.json", "common.json.*not a regular file")

    def test_secret_file_naming_a_fifo_is_refused_at_once(self):
        self.check_fifo({"headers": {"Authorization": "${file:token}"}}, "token", "not a regular file")

    def test_configuration_that_is_a_fifo_is_refused_at_once(self):
        b = Braced(self.config())
        b._write_files()
        fifo = os.path.join(b.dir, "fifo.yaml")
        os.mkfifo(fifo)
        try:
            start = time.monotonic()
            code, out, err = run_braced(["-t", "-c", fifo], timeout=CHECK_TIMEOUT)
            self.assertLess(time.monotonic() - start, CHECK_TIMEOUT)
            self.assertEqual(code, 1, out + err)
            self.assertIn("not a regular file", err)
        finally:
            b._cleanup()

    def test_reload_to_a_fifo_ref_keeps_serving(self):
        good = self.config()
        with Braced(good) as b:
            self.assertEqual(b.get("/demo/ok").status, 200)
            os.mkfifo(os.path.join(b.dir, "common.json"))
            lines = b.reload(self.config({"routes": REF_ROUTE}))
            self.assertTrue(any(l.get("level") == "error" for l in lines), lines)
            # The loop was never blocked: the old configuration answers.
            resp = b.get("/demo/after", timeout=CHECK_TIMEOUT)
            self.assertEqual(resp.status, 200, resp)


if __name__ == "__main__":
    import unittest
    unittest.main()
