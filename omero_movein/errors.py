"""The one error type the tools raise for bad input, and how the CLIs report it."""

import sys


class MoveInError(Exception):
    """Bad input: names the file (or option) at fault and the problem."""

    def __init__(self, path, problem):
        # Both go to Exception's args so the error survives pickling between processes.
        super().__init__(str(path), problem)
        self.path = str(path)
        self.problem = problem

    def __str__(self):
        return f"{self.path}: {self.problem}"


def report(error):
    """Print an error the way every CLI here does; return the exit code to use."""
    print(f"error: {error}", file=sys.stderr)
    return 2
