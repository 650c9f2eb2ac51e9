# What pagewire executes for one message, between two of its system calls: gdb steps
# tests/bench/transmit_bench one instruction at a time from one call of the stubbed system
# call to the next and prints the instructions executed and the distinct 64-byte cache lines
# of code and of data (explicit memory operands; push/pop and string instructions are not
# counted) they touched. A cold-cache cost model: each line is one the kernel's work between
# two calls may have evicted. Build with the release config first, then:
#   bazel build --config=release //tests/bench:transmit_bench
#   STEP_FILTER=TransmitFileRange STEP_CALL=__wrap_sendfile \
#     gdb -q -batch -x tests/bench/step_one_message.py bazel-bin/tests/bench/transmit_bench
# (STEP_FILTER=TransmitSliceGather STEP_CALL=__wrap_sendmsg for the gather path;
# STEP_FILTER=TransmitFileRangeSplice STEP_CALL=__wrap_splice STEP_CALLS=2 for the pipe, two
# calls per message.) Stepping takes about a minute.
import os
import re

import gdb

FILTER = os.environ.get("STEP_FILTER", "TransmitFileRange")
CALL = os.environ.get("STEP_CALL", "__wrap_sendfile")
CALLS = int(os.environ.get("STEP_CALLS", "1"))  # calls of CALL per message
WARMUP = 50  # messages sent before the one stepped (caches, lazily made objects)
MAX_STEPS = 200000

MEMORY_OPERAND = re.compile(r"(?<![%\w])(-?0x[0-9a-f]+)?\((%\w+)(?:,(%\w+),(\d))?\)")
RIP_TARGET = re.compile(r"# (0x[0-9a-f]+)")


def register(name):
    return int(gdb.parse_and_eval("$" + name.lstrip("%")))


def data_address(text):
    """The address an instruction's explicit memory operand names, or None."""
    if "%fs:" in text or text.split()[0] in ("lea", "nop", "nopl", "nopw"):
        return None
    m = MEMORY_OPERAND.search(text)
    if not m:
        return None
    if m.group(2) == "%rip":
        target = RIP_TARGET.search(text)
        return int(target.group(1), 16) if target else None
    address = register(m.group(2)) + (int(m.group(1), 16) if m.group(1) else 0)
    if m.group(3):
        address += register(m.group(3)) * int(m.group(4))
    return address & ((1 << 64) - 1)


def main():
    gdb.execute("set pagination off")
    gdb.execute("set confirm off")
    gdb.execute("break " + CALL)
    gdb.execute("run --benchmark_filter=%s --benchmark_min_time=0.5 > /dev/null" % FILTER)
    for _ in range(WARMUP):
        gdb.execute("continue", to_string=True)
    stop = int(gdb.parse_and_eval("$pc"))
    steps, code, data, calls = 0, set(), set(), 0
    while steps < MAX_STEPS:
        gdb.execute("stepi", to_string=True)
        pc = int(gdb.parse_and_eval("$pc"))
        if pc == stop:
            calls += 1
            if calls == CALLS:
                break
        steps += 1
        code.add(pc >> 6)
        text = gdb.execute("x/i $pc", to_string=True).split(":\t", 1)[-1].strip()
        address = data_address(text)
        if address is not None:
            data.add(address >> 6)
    print("instructions %d, code lines %d, data lines %d" % (steps, len(code), len(data)))
    gdb.execute("kill")


main()
