#!/usr/bin/env python3
"""Counts test cases (not targets) from the test.xml files of the given Bazel tests.

Usage: count_test_cases.py TESTLOGS_DIR LABEL... ; prints "passed failed skipped".
A target without a test.xml (it failed to build, or never ran) counts as one failure,
so a broken build can never read as a clean run.
"""

import os
import sys
import xml.etree.ElementTree as ET


def xml_path(testlogs, label):
    package, _, name = label.lstrip("/").partition(":")
    return os.path.join(testlogs, package, name, "test.xml")


def count_file(path):
    passed = failed = skipped = 0
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.get("result") == "skipped" or case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    if passed + failed + skipped == 0:
        # Bazel writes a suite with no cases when a binary dies before its XML.
        failed = 1
    return passed, failed, skipped


def main(argv):
    testlogs, labels = argv[1], argv[2:]
    totals = [0, 0, 0]
    for label in labels:
        path = xml_path(testlogs, label)
        try:
            counts = count_file(path)
        except (OSError, ET.ParseError) as err:
            print(f"{label}: no readable test.xml ({err})", file=sys.stderr)
            counts = (0, 1, 0)
        for i, n in enumerate(counts):
            totals[i] += n
    print(*totals)


if __name__ == "__main__":
    main(sys.argv)
