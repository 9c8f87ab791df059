"""Checks that every psql transcript in the docs is part of an expected file of test/, so that
what the docs show is what a test saw. A transcript is a ```psql block; its text, from its
first statement to its end, must appear in one test/expected/*.out as it is."""

import pathlib
import re
import sys

expected = {path.name: path.read_text() for path in pathlib.Path("test/expected").glob("*.out")}
blocks = failures = 0
for name in sys.argv[1:]:
    text = pathlib.Path(name).read_text()
    for match in re.finditer(r"^```psql\n(.*?)^```$", text, re.S | re.M):
        blocks += 1
        transcript = match.group(1)
        if not any(transcript in output for output in expected.values()):
            failures += 1
            line = text.count("\n", 0, match.start()) + 1
            print(f"{name}:{line}: this transcript is in no test/expected/*.out", file=sys.stderr)
print(f"docs transcripts: {blocks - failures} of {blocks} found in test/expected")
sys.exit(1 if failures else 0)
