"""`python -m varpulis_mp` is the `varpulis-mp` command."""

from varpulis_mp.cli import main

main()
