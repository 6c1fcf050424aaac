"""Command-line front ends (installed as ``medtalk_cli``): thin adapters over the libraries."""
