"""The documentation says what braced does: the README's configuration
passes `braced -t` as written, the README stays a guide (SPEC 7: at most 400
lines), and every link between README.md and docs/ leads somewhere. The
console examples run in test_scripts.py."""

import os
import re
import tempfile
import unittest

from harness import REPO, run_braced

README_MAX_LINES = 400


def read(name):
    with open(os.path.join(REPO, name), encoding="utf-8") as f:
        return f.read()


def fenced_blocks(text, lang):
    """The contents of every ```lang block of a Markdown text."""
    return re.findall(r"^```" + lang + r"\n(.*?)^```", text, re.M | re.S)


def whole_configurations(text):
    """The YAML blocks that are whole configuration files (a top-level
    `profiles:`), not fragments of one."""
    return [b for b in fenced_blocks(text, "yaml") if re.search(r"^profiles:", b, re.M)]


def doc_files():
    return ["README.md"] + sorted(os.path.join("docs", f)
                                  for f in os.listdir(os.path.join(REPO, "docs"))
                                  if f.endswith(".md"))


def anchors(text):
    """GitHub's anchors for a Markdown text's headings."""
    out, in_fence = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else re.match(r"^#{1,6} (.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


class ReadmeTest(unittest.TestCase):

    def test_readme_is_a_guide(self):
        lines = read("README.md").splitlines()
        self.assertLessEqual(len(lines), README_MAX_LINES)
        # It opens with the two set-up commands.
        head = "\n".join(lines[:8])
        self.assertIn("scripts/run", head)
        self.assertIn("scripts/test", head)

    def test_readme_configuration_passes_check_config(self):
        confs = whole_configurations(read("README.md"))
        self.assertGreaterEqual(len(confs), 1, "the README walks through no configuration")
        for i, text in enumerate(confs):
            with self.subTest(block=i), tempfile.TemporaryDirectory() as tmp:
                # As written: nothing from the environment or another file.
                self.assertNotIn("${", text)
                path = os.path.join(tmp, "braced.yaml")
                with open(path, "w") as f:
                    f.write(text)
                code, out, err = run_braced(["-t", "-c", path])
                self.assertEqual(code, 0, err)
                self.assertEqual(out.strip(), f"{path}: ok")

    def test_links_lead_somewhere(self):
        for name in doc_files():
            text = read(name)
            base = os.path.dirname(name)
            for target in re.findall(r"\]\(([^)\s]+)\)", text):
                if re.match(r"[a-z]+:", target):
                    continue
                with self.subTest(doc=name, link=target):
                    path, _, frag = target.partition("#")
                    rel = os.path.normpath(os.path.join(base, path)) if path else name
                    self.assertTrue(os.path.exists(os.path.join(REPO, rel)), rel)
                    if frag and rel.endswith(".md"):
                        self.assertTrue(frag in anchors(read(rel)), f"{rel}#{frag}")

    def test_no_issue_numbers(self):
        # A reader cannot see the project's tracker: the text stands alone.
        for name in doc_files():
            with self.subTest(doc=name):
                m = re.search(r"(?i)(?<!curl )\bissues? \d+", read(name))
                self.assertIsNone(m, m and m.group(0))


if __name__ == "__main__":
    unittest.main()
