"""scripts/run, as the README's first command: it serves the demo, and
stopping the script (Ctrl-C or kill PID) stops braced and the demo upstream."""

import os
import re
import signal
import socket
import subprocess
import time
import unittest

from harness import REPO, request, wait_until

PORTS = (7070, 7080)   # braced and the demo upstream, as conf/braced.yaml has them


def default_signals():
    """In the child before exec: SIGINT, SIGQUIT and SIGTERM at their
    defaults. A shell started in the background (`scripts/test &`) hands its
    jobs SIGINT ignored, and a POSIX sh cannot trap a signal ignored when it
    started: scripts/run's Ctrl-C trap would never fire."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RunScript(unittest.TestCase):
    """Starts scripts/run and stops it; no tests of its own."""

    def start(self):
        busy = [p for p in PORTS if listening(p)]
        if busy:
            self.fail(f"ports {busy} are already in use: stop the other scripts/run first")
        proc = subprocess.Popen([os.path.join(REPO, "scripts", "run")], cwd=REPO,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=default_signals)
        self.addCleanup(self.kill_group, proc)
        up = wait_until(lambda: all(listening(p) for p in PORTS), timeout=120, step=0.1)
        self.assertTrue(up, "scripts/run did not start braced and the demo upstream")
        return proc

    def kill_group(self, proc):
        # Only if the test failed half-way: the script's whole session, by its PID.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

    def check_stops_on(self, sig):
        proc = self.start()
        resp = request(7070, "GET", "/demo/v1/weather?city=Paris", timeout=10)
        self.assertEqual(resp.status, 200, resp)
        os.kill(proc.pid, sig)
        proc.wait(20)
        gone = wait_until(lambda: not any(listening(p) for p in PORTS), timeout=15, step=0.1)
        self.assertTrue(gone, f"still listening after {sig.name} to the script: "
                              f"{[p for p in PORTS if listening(p)]}")


class RunScriptTest(RunScript):

    def test_kill_stops_braced_and_the_upstream(self):
        self.check_stops_on(signal.SIGTERM)

    def test_ctrl_c_stops_braced_and_the_upstream(self):
        # A terminal's Ctrl-C reaches the script's foreground group; the
        # script's own SIGINT is what matters here. The script starts with
        # SIGINT at its default (default_signals), as from a terminal,
        # however this test was started.
        self.check_stops_on(signal.SIGINT)


# The documents whose console examples run against scripts/run: the README
# first, then docs/ in name order (each leaves the demo as it found it).
def example_files():
    docs = os.path.join(REPO, "docs")
    return ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(docs)
                                  if f.endswith(".md"))


def doc_examples(name):
    """A document's console commands against what scripts/run starts (curl to
    127.0.0.1:7070, 7071 or 7080), each with the output lines the document
    shows after it (empty when none)."""
    with open(os.path.join(REPO, name)) as f:
        lines = f.read().splitlines()
    examples, i, in_console = [], 0, False
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_console = line.strip() == "```console"
            i += 1
            continue
        if in_console and line.startswith("$ "):
            cmd = line[2:]
            # Continued by a backslash or an open single quote, as bash reads it.
            while (cmd.endswith("\\") or cmd.count("'") % 2) and i + 1 < len(lines):
                i += 1
                cmd += "\n" + lines[i]
            shown = []
            while i + 1 < len(lines) and not lines[i + 1].startswith(("$ ", "```")):
                i += 1
                shown.append(lines[i])
            if re.search(r"\b127\.0\.0\.1:70[78][01]\b", cmd) and cmd.startswith("curl "):
                examples.append((cmd, shown))
        i += 1
    return examples


def readme_examples():
    return doc_examples("README.md")


# Header values an example may show that are the same on every run.
STABLE_HEADERS = ("content-type", "brace-error", "brace-attempts")


def head_of(text):
    """Status line and {lower-case name: value} of an HTTP head in text."""
    lines = text.replace("\r\n", "\n").split("\n")
    headers = {}
    for line in lines[1:]:
        if not line.strip():
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


class ReadmeExamplesTest(RunScript):

    def check_example(self, cmd, shown):
        out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        first = out.stdout.splitlines()[0] if out.stdout else ""
        if not shown:
            return
        text = "\n".join(shown)
        code = re.search(r'"code":"([a-z_]+)"', text)
        status = re.match(r"HTTP/1\.1 (\d+)", shown[0])
        if status:
            got_line, got = head_of(out.stdout)
            self.assertTrue(got_line.startswith(f"HTTP/1.1 {status.group(1)}"), got_line)
            # Every header the document shows is there, with the same value
            # where the value does not change from run to run.
            _, want = head_of(text)
            for name, value in want.items():
                self.assertIn(name, got, f"{name} shown but not sent: {out.stdout[:600]}")
                if name in STABLE_HEADERS:
                    self.assertEqual(got[name], value, name)
        elif code:
            self.assertIn(f'"code":"{code.group(1)}"', out.stdout)
        else:
            self.assertEqual(first.split(":")[0], shown[0].split(":")[0])

    def test_readme_examples_run_as_written(self):
        examples = [(name, cmd, shown) for name in example_files()
                    for cmd, shown in doc_examples(name)]
        self.assertGreaterEqual(len(readme_examples()), 8, readme_examples())
        proc = self.start()
        try:
            for name, cmd, shown in examples:
                with self.subTest(doc=name, cmd=cmd):
                    self.check_example(cmd, shown)
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(20)


if __name__ == "__main__":
    unittest.main()
