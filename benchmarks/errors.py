"""The one exception type for problems a user can cause in benchmarking."""


class BenchError(Exception):
    """adb missing, no device, unauthorized device, bad benchmark log, ...

    The message says what is wrong and how to fix it; the CLI prints it on one line and exits 2.
    """
