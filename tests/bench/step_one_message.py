# What pagewire executes for one message, between two of its system calls: gdb steps
# tests/bench/transmit_bench one instruction at a time from one call of the stubbed system
# call to the next and prints the instructions executed and the distinct 64-byte cache lines
# of code and of data (explicit memory operands; push/pop and string instructions are not
# counted) they touched, and the 4 KiB pages those lines lie on. A cold-cache cost model:
# each line is one the kernel's work between two calls may have evicted, each page a TLB
# entry it may have. Build with the release config first, then:
#   bazel build --config=release //tests/bench:transmit_bench
#   STEP_FILTER=TransmitFileRange STEP_CALL=__wrap_sendfile \
#     gdb -q -batch -x tests/bench/step_one_message.py bazel-bin/tests/bench/transmit_bench
# (STEP_FILTER=TransmitSliceGather STEP_CALL=__wrap_sendmsg for the gather path;
# STEP_FILTER=TransmitFileRangeSplice STEP_CALL=__wrap_splice STEP_CALLS=2 for the pipe, two
# calls per message.) Stepping takes about a minute. STEP_DETAIL=1 adds the code lines per
# function and, per data line, the functions that touched it (STEP_DETAIL_OPS=1: and the
# instructions, for lines outside the stack): where a line count comes from.
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


DETAIL = os.environ.get("STEP_DETAIL") == "1"
DETAIL_OPS = os.environ.get("STEP_DETAIL_OPS") == "1"
STACK_FROM = 0x7FF000000000  # lines above this are the stack's (x86-64 Linux user space)
_function_cache = {}


def function_at(pc):
    """The function holding `pc` (gdb's symbol, without the offset), cached."""
    if pc not in _function_cache:
        info = gdb.execute("info symbol %#x" % pc, to_string=True)
        name = info.split(" in section")[0]
        _function_cache[pc] = re.sub(r" \+ \d+$", "", name).strip()
    return _function_cache[pc]


def main():
    gdb.execute("set pagination off")
    gdb.execute("set confirm off")
    gdb.execute("break " + CALL)
    gdb.execute("run --benchmark_filter=%s --benchmark_min_time=0.5 > /dev/null" % FILTER)
    for _ in range(WARMUP):
        gdb.execute("continue", to_string=True)
    stop = int(gdb.parse_and_eval("$pc"))
    steps, code, data, calls = 0, set(), set(), 0
    owners = {}  # data line -> the functions whose instructions touched it
    code_owner = {}  # code line -> function
    executed = {}  # function -> instructions executed in it
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
        fn = function_at(pc) if DETAIL else None
        if DETAIL:
            code_owner.setdefault(pc >> 6, fn)
            executed[fn] = executed.get(fn, 0) + 1
        address = data_address(text)
        if address is not None:
            data.add(address >> 6)
            if DETAIL:
                owners.setdefault(address >> 6, []).append((fn, text))
    print(
        "instructions %d, code lines %d, data lines %d, code pages %d, data pages %d"
        % (steps, len(code), len(data), len({c >> 6 for c in code}), len({d >> 6 for d in data}))
    )
    if DETAIL:
        per_fn = {}
        for fn in code_owner.values():
            per_fn[fn] = per_fn.get(fn, 0) + 1
        print("code lines and instructions by function:")
        for fn, n in sorted(per_fn.items(), key=lambda kv: -kv[1]):
            print("  %3d %4d %s" % (n, executed.get(fn, 0), fn))
        print("data lines (line address: first touching functions):")
        for line in sorted(owners):
            fns = []
            for fn, op in owners[line]:
                if fn not in fns:
                    fns.append(fn)
            print("  %#x: %s" % (line << 6, "; ".join(fns[:3])))
            if DETAIL_OPS and line < (STACK_FROM >> 6):
                for fn, op in owners[line][:6]:
                    print("        %s  %s" % (fn.split("(")[0][-40:], op))
    gdb.execute("kill")


main()
