"""The one exception type for problems a user can cause in the isp layer."""


class ISPError(Exception):
    """Bad model name, bad config key, missing checkpoint, diverged training, ...

    The message says what is wrong and how to fix it; the CLI prints it on one line and exits 2.
    """
