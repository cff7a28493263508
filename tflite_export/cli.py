"""`isp` subcommands of the exporter: check-gpu."""
from tflite_export import gpu_check


def add_commands(subparsers):
    """Register the exporter's subcommands."""
    gpu_check.add_command(subparsers)
