#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Prints one line 'N passed, N failed[, N skipped]' from meson's testlog.json and pytest
junit XML files, so that a run that executed nothing is visible."""
import json
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        if path.endswith(".json"):
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    res = json.loads(line).get("result")
                    if res in ("OK", "EXPECTEDFAIL"):
                        passed += 1
                    elif res == "SKIP":
                        skipped += 1
                    else:
                        failed += 1
        else:
            root = ET.parse(path).getroot()
            suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
            for s in suites:
                total = int(s.get("tests", 0))
                f_ = int(s.get("failures", 0)) + int(s.get("errors", 0))
                sk = int(s.get("skipped", 0))
                passed += total - f_ - sk
                failed += f_
                skipped += sk
    except (OSError, ValueError, ET.ParseError) as e:
        print("test-summary: cannot read %s: %s" % (path, e), file=sys.stderr)
        failed += 1
line = "%d passed, %d failed" % (passed, failed)
if skipped:
    line += ", %d skipped" % skipped
print(line)
