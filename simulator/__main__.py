"""`python -m simulator` runs the `convsim` command."""

from simulator.cli import main

main()
