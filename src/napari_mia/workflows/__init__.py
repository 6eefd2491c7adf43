"""Folder-level jobs shared by the command line and the docks: no Qt, no argparse, no printing.

Each takes plain values and returns a small report, or yields progress (``events``) and ends with its report.
"""
