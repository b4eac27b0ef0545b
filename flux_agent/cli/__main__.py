"""`python -m flux_agent.cli` runs the `flux` command."""

from flux_agent.cli import main

main()
