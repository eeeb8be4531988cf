"""A simulated sales department that lives through days, driven into the running system.

`organisation.build_plan(seed, ...)` makes the department and what happens in it, day by day
(pure, deterministic); `driver.Driver` sends that plan to the four services through their
public interfaces only; `python -m bench.demo` (`make demo`) is the command line.
"""
