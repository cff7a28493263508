"""The one exception type for problems a user can cause in the exporter."""


class ExportError(Exception):
    """Missing run/checkpoint, unconvertible model, unreadable .tflite file, ...

    The message names the file and the fix; the CLI prints it on one line and exits 2.
    """
