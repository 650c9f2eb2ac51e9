"""unittest with JUnit XML: what every Python test driver here runs through.

`run_suite(name)` runs the tests of the __main__ module verbosely, writes one <testcase>
per test to $XML_OUTPUT_FILE when Bazel sets it (so `make test` counts cases, not
targets), and exits 0 only when every test passed. Standard library only.
"""

import os
import sys
import unittest
import xml.etree.ElementTree as ET


class _XmlResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.cases = []

    def _record(self, test, kind, detail=""):
        self.cases.append((test.id().split(".")[-1], type(test).__name__, kind, detail))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failure", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)


def run_suite(suite_name):
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules["__main__"])
    runner = unittest.TextTestRunner(resultclass=_XmlResult, verbosity=2)
    result = runner.run(suite)
    xml_path = os.environ.get("XML_OUTPUT_FILE")
    if xml_path:
        suites = ET.Element("testsuites")
        node = ET.SubElement(suites, "testsuite", name=suite_name, tests=str(len(result.cases)))
        for name, classname, kind, detail in result.cases:
            case = ET.SubElement(node, "testcase", name=name, classname=classname)
            if kind != "pass":
                message = detail.splitlines()[-1] if detail else ""
                ET.SubElement(case, kind, message=message).text = detail
        ET.ElementTree(suites).write(xml_path, encoding="utf-8", xml_declaration=True)
    sys.exit(0 if result.wasSuccessful() else 1)
