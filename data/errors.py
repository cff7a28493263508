"""The one exception type for problems a user can cause in the data layer."""


class DataError(Exception):
    """Bad input data: unreadable file, missing pair partner, wrong bit depth, bad profile.

    The message names the file (when there is one) and what to do about it; the CLI prints it
    on one line and exits with status 2.
    """
